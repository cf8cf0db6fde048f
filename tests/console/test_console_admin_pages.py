"""Console admin pages and reports: couriers, stores, Today and the CSV export."""

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.security import verify_password
from app.db.models import Role, Store, StoreStatus, User, UserSession, UserStatus
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user
from tests.console.helpers import sign_in

ADMIN_PAGES = ["/console/couriers", "/console/stores", "/console/couriers/1", "/console/stores/1"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_are_refused_to_store_users(client: TestClient, db: Session, path: str) -> None:
    store = make_store(db)
    make_user(db, role=Role.COURIER)
    sign_in(client, db, make_store_user(db, store=store))
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/console/today", "/console/export"])
def test_report_and_admin_pages_need_sign_in(client: TestClient, path: str) -> None:
    assert client.get(path, follow_redirects=False).status_code == 303


def test_admin_creates_a_courier_with_a_password(client: TestClient, db: Session) -> None:
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(
        "/console/couriers",
        data={
            "csrf_token": csrf,
            "name": "משה רץ",
            "phone": "+972 50 555 0101",
            "password": "long enough",
            "capacity_boxes": "12",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    courier = db.scalar(select(User).where(User.name == "משה רץ"))
    assert courier is not None
    assert (courier.role, courier.capacity_boxes) == (Role.COURIER, 12)
    assert verify_password("long enough", courier.password_hash)
    assert "משה רץ" in client.get("/console/couriers").text


def test_new_courier_form_names_its_bad_fields(client: TestClient, db: Session) -> None:
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(
        "/console/couriers",
        data={"csrf_token": csrf, "name": "", "password": "short", "capacity_boxes": "0"},
    )
    assert response.status_code == 422
    for field in ("name", "password", "capacity_boxes"):
        assert f'id="e-{field}"' in response.text, field
    assert 'value="short"' not in response.text  # a password is never sent back


def test_a_taken_email_is_shown_next_to_the_email(client: TestClient, db: Session) -> None:
    existing = make_user(db, role=Role.COURIER)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(
        "/console/couriers",
        data={"csrf_token": csrf, "name": "Twin", "email": existing.email, "password": "x" * 10},
    )
    assert response.status_code == 409
    assert 'id="e-email"' in response.text


def _refreshed_status(db: Session, user: User) -> UserStatus:
    db.refresh(user)
    return user.status


def test_admin_suspends_and_reactivates_a_courier(client: TestClient, db: Session) -> None:
    courier = make_user(db, role=Role.COURIER)
    from tests.builders import login_tokens

    login_tokens(db, courier)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    client.post(
        f"/console/couriers/{courier.id}/status", data={"csrf_token": csrf, "status": "suspended"}
    )
    db.refresh(courier)
    assert courier.status == UserStatus.SUSPENDED
    revoked = db.scalar(select(UserSession.revoked_at).where(UserSession.user_id == courier.id))
    assert revoked is not None
    client.post(
        f"/console/couriers/{courier.id}/status", data={"csrf_token": csrf, "status": "active"}
    )
    # Read back through a function: mypy keeps the first assert's narrowing across a refresh.
    assert _refreshed_status(db, courier) == UserStatus.ACTIVE


def test_admin_resets_a_couriers_password(client: TestClient, db: Session) -> None:
    courier = make_user(db, role=Role.COURIER)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    short = client.post(
        f"/console/couriers/{courier.id}/password", data={"csrf_token": csrf, "password": "abc"}
    )
    assert short.status_code == 422
    assert 'id="e-password"' in short.text
    client.post(
        f"/console/couriers/{courier.id}/password",
        data={"csrf_token": csrf, "password": "a new password"},
    )
    db.refresh(courier)
    assert verify_password("a new password", courier.password_hash)


def test_admin_edits_a_courier_and_bad_capacity_is_named(client: TestClient, db: Session) -> None:
    courier = make_user(db, role=Role.COURIER)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    bad = client.post(
        f"/console/couriers/{courier.id}/edit",
        data={"csrf_token": csrf, "name": "Renamed", "capacity_boxes": "999"},
    )
    assert bad.status_code == 422
    assert 'id="e-capacity_boxes"' in bad.text
    client.post(
        f"/console/couriers/{courier.id}/edit",
        data={"csrf_token": csrf, "name": "Renamed", "capacity_boxes": "20"},
    )
    db.refresh(courier)
    assert (courier.name, courier.capacity_boxes) == ("Renamed", 20)


def test_admin_creates_a_store_sets_its_owner_and_suspends_it(
    client: TestClient, db: Session
) -> None:
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(
        "/console/stores",
        data={"csrf_token": csrf, "name": "מאפיית השכונה", "pickup_address": "Herzl 1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    store = db.scalar(select(Store).where(Store.name == "מאפיית השכונה"))
    assert store is not None
    missing = client.post(f"/console/stores/{store.id}/owner", data={"csrf_token": csrf})
    assert missing.status_code == 422
    assert "password is required" in missing.text
    client.post(
        f"/console/stores/{store.id}/owner",
        data={
            "csrf_token": csrf,
            "owner_name": "Owner",
            "owner_email": "owner@bakery.example",
            "owner_password": "owner password",
        },
    )
    assert "owner@bakery.example" in client.get(f"/console/stores/{store.id}").text
    client.post(
        f"/console/stores/{store.id}/edit", data={"csrf_token": csrf, "status": "suspended"}
    )
    db.refresh(store)
    assert store.status == StoreStatus.SUSPENDED


def test_a_duplicate_store_name_is_shown_next_to_the_name(client: TestClient, db: Session) -> None:
    existing = make_store(db)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post("/console/stores", data={"csrf_token": csrf, "name": existing.name})
    assert response.status_code == 409
    assert 'id="e-name"' in response.text


def test_today_counts_the_callers_orders(client: TestClient, db: Session) -> None:
    mine, theirs = make_store(db), make_store(db)
    courier = make_user(db, role=Role.COURIER)
    make_order(db, store=mine)
    make_order(db, store=mine, status="picked_up", courier=courier)
    make_order(db, store=theirs)
    sign_in(client, db, make_store_user(db, store=mine))
    html = client.get("/console/today").text
    assert '<div class="stat" id="stat-created"><strong>2</strong>' in html
    assert '<div class="stat" id="stat-open"><strong>2</strong>' in html
    assert html.count("<rect ") == 24
    bad = client.get("/console/today", params={"day": "soon"})
    assert "day must be a date like 2026-12-01" in bad.text


def test_export_downloads_the_apis_csv_for_a_date_range(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    owner = make_store_user(db, store=store)
    sign_in(client, db, owner)
    day = order.created_at.date().isoformat()
    response = client.get("/console/export.csv", params={"from": day, "to": day})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == [str(order.id)]
    api = client.get(
        "/v1/orders/export.csv",
        params={"from": day, "to": day},
        headers=auth_headers(db, owner),
    )
    assert api.content == response.content
    missing = client.get("/console/export.csv")
    assert missing.status_code == 400 or missing.status_code == 422
    assert "Pick the first and the last day" in missing.text
