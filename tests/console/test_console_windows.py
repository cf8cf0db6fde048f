"""The console and time windows: the late badge, the Today counts, window inputs in the forms."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import Order, Role
from tests.builders import make_order, make_store, make_store_user, make_user
from tests.console.helpers import sign_in

NEW_ORDER = {
    "recipient_first_name": "Noa",
    "recipient_last_name": "Levi",
    "phone": "+972501234567",
    "street": "Dizengoff",
    "building_no": "100",
    "boxes_count": "2",
}


@pytest.fixture
def jerusalem(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "business_timezone", "Asia/Jerusalem")


def late_order(db: Session, **fields: object) -> Order:
    order = make_order(db, **fields)  # type: ignore[arg-type]
    db.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(deliver_before=utcnow() - timedelta(minutes=15))
    )
    db.commit()
    return order


def test_the_board_and_the_order_page_badge_a_late_order(client: TestClient, db: Session) -> None:
    store = make_store(db)
    late = late_order(db, store=store)
    on_time = make_order(db, store=store)
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    board = client.get("/console/board").text
    assert f'data-order-id="{late.id}"' in board
    late_item = board.split(f'data-order-id="{late.id}"')[0].rsplit("<li", 1)[1]
    on_time_item = board.split(f'data-order-id="{on_time.id}"')[0].rsplit("<li", 1)[1]
    assert " late" in late_item
    assert " late" not in on_time_item
    assert '<span class="badge late">late</span>' in board
    page = client.get(f"/console/orders/{late.id}").text
    assert 'id="order-late"' in page
    assert 'id="order-late"' not in client.get(f"/console/orders/{on_time.id}").text


def test_today_counts_late_orders_and_late_deliveries(client: TestClient, db: Session) -> None:
    store = make_store(db)
    courier = make_user(db, role=Role.COURIER)
    late_order(db, store=store)
    late_order(db, store=store, status="canceled")  # final: not late
    delivered = make_order(db, store=store, status="delivered", courier=courier)
    now = utcnow()
    db.execute(
        update(Order)
        .where(Order.id == delivered.id)
        .values(deliver_before=now - timedelta(minutes=30), delivered_at=now - timedelta(minutes=5))
    )
    db.commit()
    sign_in(client, db, make_store_user(db, store=store))
    html = client.get("/console/today").text
    assert 'id="stat-late"><strong>1</strong>' in html
    assert 'id="stat-delivered-late"><strong>1</strong>' in html


def test_new_order_form_takes_windows_as_business_wall_clock_times(
    client: TestClient, db: Session, jerusalem: None
) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    form = client.get("/console/orders/new").text
    assert 'name="deliver_before" type="datetime-local"' in form
    local = (utcnow() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Jerusalem"))
    typed = local.replace(tzinfo=None, second=0, microsecond=0).isoformat(timespec="minutes")
    response = client.post(
        "/console/orders/new",
        data={**NEW_ORDER, "deliver_before": typed, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    order = db.scalar(select(Order))
    assert order is not None
    assert order.deliver_before is not None
    assert order.deliver_before == datetime.fromisoformat(typed).replace(tzinfo=local.tzinfo)
    page = client.get(f"/console/orders/{order.id}").text
    assert f'value="{typed}:00"' in page  # the edit form shows it back in the same wall clock


def test_new_order_form_names_a_bad_window(client: TestClient, db: Session) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    soon = (utcnow() + timedelta(hours=2)).replace(tzinfo=None).isoformat(timespec="minutes")
    later = (utcnow() + timedelta(hours=3)).replace(tzinfo=None).isoformat(timespec="minutes")
    response = client.post(
        "/console/orders/new",
        data={**NEW_ORDER, "pickup_after": later, "deliver_before": soon, "csrf_token": csrf},
    )
    assert response.status_code == 422
    assert 'id="e-pickup_after"' in response.text
    assert db.scalar(select(Order)) is None


def test_edit_form_clears_a_window_end_and_names_a_bad_one(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    due = utcnow() + timedelta(hours=3)
    db.execute(update(Order).where(Order.id == order.id).values(deliver_before=due))
    db.commit()
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    base = {
        **NEW_ORDER,
        "pickup_address": "Herzl 1",
        "delivery_address": "Dizengoff 100",
        "version": str(order.version),
        "csrf_token": csrf,
    }
    past = (utcnow() - timedelta(hours=3)).replace(tzinfo=None).isoformat(timespec="minutes")
    bad = client.post(f"/console/orders/{order.id}/edit", data={**base, "deliver_before": past})
    assert bad.status_code == 422
    assert 'id="e-deliver_before"' in bad.text
    cleared = client.post(
        f"/console/orders/{order.id}/edit",
        data={**base, "deliver_before": ""},
        follow_redirects=False,
    )
    assert cleared.status_code == 303, cleared.text
    db.expire_all()
    again = db.get(Order, order.id)
    assert again is not None
    assert again.deliver_before is None
