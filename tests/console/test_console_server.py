"""The console's server side: sign-in and its cookie, CSRF, scoping, forms' messages, headers."""

import base64
import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.console.assets import STATIC_DIR, assets
from app.console.session import ACCESS_COOKIE, LOGIN_CSRF_COOKIE
from app.db.models import Order, OrderStatus, Role, UserSession, UserStatus
from app.services import couriers as couriers_service
from tests.builders import PASSWORD, make_order, make_store, make_store_user, make_user
from tests.console.helpers import sign_in

PAGES = ["/console", "/console/board", "/console/orders/new", "/console/orders/1"]
FORMS = [
    "/console/orders/new",
    "/console/orders/1/assign",
    "/console/orders/1/unassign",
    "/console/orders/1/cancel",
    "/console/orders/1/edit",
    "/console/orders/1/delete",
    "/console/orders/1/redeliver",
    "/console/orders/1/return",
    "/console/couriers/1/duty",
    "/console/logout",
]


def _login_form(client: TestClient) -> str:
    page = client.get("/console/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match[1]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_is_reachable_without_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_the_live_stream_is_refused_without_sign_in(client: TestClient) -> None:
    response = client.get("/console/events", follow_redirects=False)
    assert response.status_code == 303


@pytest.mark.parametrize("path", FORMS)
def test_no_form_is_accepted_without_sign_in(client: TestClient, db: Session, path: str) -> None:
    store = make_store(db)
    make_order(db, store=store)
    response = client.post(path, data={"reason": "x"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    assert db.scalar(select(Order.status)) == OrderStatus.NEW


def test_console_pages_carry_a_strict_content_security_policy(
    client: TestClient, db: Session
) -> None:
    admin = make_user(db, role=Role.ADMIN)
    sign_in(client, db, admin)
    for path in ("/console", "/console/login"):
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "connect-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
    html = client.get("/console").text
    # No inline script or style anywhere: every <script> has a src, no style= attributes.
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert " style=" not in html


def test_sign_in_sets_an_httponly_lax_cookie_bound_to_a_session_row(
    client: TestClient, db: Session
) -> None:
    admin = make_user(db, role=Role.ADMIN)
    token = _login_form(client)
    response = client.post(
        "/console/login",
        data={"identifier": admin.email, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    session_cookie = next(c for c in cookies if c.startswith(f"{ACCESS_COOKIE}="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie
    assert "Path=/console" in session_cookie
    assert "Secure" not in session_cookie  # plain http here; see the https test
    assert db.scalar(select(func.count()).select_from(UserSession)) == 1
    assert client.get("/console").status_code == 200


def test_the_session_cookie_is_secure_behind_https(app: object, db: Session) -> None:
    admin = make_user(db, role=Role.ADMIN)
    with TestClient(app, base_url="https://testserver") as client:  # type: ignore[arg-type]
        token = _login_form(client)
        response = client.post(
            "/console/login",
            data={"identifier": admin.email, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
    cookie = next(v for k, v in response.headers.multi_items() if v.startswith(f"{ACCESS_COOKIE}="))
    assert "Secure" in cookie


def test_sign_in_with_a_wrong_password_says_so_and_sets_no_cookie(
    client: TestClient, db: Session
) -> None:
    admin = make_user(db, role=Role.ADMIN)
    token = _login_form(client)
    response = client.post(
        "/console/login",
        data={"identifier": admin.email, "password": "wrong password", "csrf_token": token},
    )
    assert response.status_code == 401
    assert "Invalid identifier or password" in response.text
    assert ACCESS_COOKIE not in response.cookies


def test_sign_in_without_the_forms_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    admin = make_user(db, role=Role.ADMIN)
    response = client.post("/console/login", data={"identifier": admin.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "csrf_refused" in response.text
    assert db.scalar(select(func.count()).select_from(UserSession)) == 0


def test_a_courier_cannot_sign_in_to_the_console(client: TestClient, db: Session) -> None:
    courier = make_user(db, role=Role.COURIER)
    token = _login_form(client)
    response = client.post(
        "/console/login",
        data={"identifier": courier.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 403
    assert "Couriers use the Zariz app" in response.text
    assert db.scalar(select(UserSession.revoked_at)) is not None


def test_sign_in_with_empty_fields_says_what_is_missing(client: TestClient) -> None:
    token = _login_form(client)
    client.cookies.set(LOGIN_CSRF_COOKIE, token)
    response = client.post("/console/login", data={"csrf_token": token})
    assert response.status_code == 422
    assert "Enter your email or phone and your password." in response.text


def test_a_state_changing_form_without_csrf_token_is_refused(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    for data in ({"reason": "no token"}, {"reason": "wrong", "csrf_token": "0" * 64}):
        response = client.post(f"/console/orders/{order.id}/cancel", data=data)
        assert response.status_code == 403
        assert "csrf_refused" in response.text
    db.refresh(order)
    assert order.status == OrderStatus.NEW


def test_a_csrf_token_of_another_session_is_refused(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    admin = make_user(db, role=Role.ADMIN)
    other_token = sign_in(client, db, admin)
    sign_in(client, db, admin)  # a new session: a new token
    response = client.post(
        f"/console/orders/{order.id}/cancel", data={"csrf_token": other_token, "reason": "x"}
    )
    assert response.status_code == 403
    db.refresh(order)
    assert order.status == OrderStatus.NEW


def test_another_stores_order_page_is_404(client: TestClient, db: Session) -> None:
    mine, theirs = make_store(db), make_store(db)
    order = make_order(db, store=theirs)
    csrf = sign_in(client, db, make_store_user(db, store=mine))
    assert client.get(f"/console/orders/{order.id}").status_code == 404
    response = client.post(
        f"/console/orders/{order.id}/cancel", data={"csrf_token": csrf, "reason": "x"}
    )
    assert response.status_code == 404
    db.refresh(order)
    assert order.status == OrderStatus.NEW


def test_the_board_shows_only_the_store_users_orders(client: TestClient, db: Session) -> None:
    mine, theirs = make_store(db), make_store(db)
    own = make_order(db, store=mine)
    other = make_order(db, store=theirs)
    sign_in(client, db, make_store_user(db, store=mine))
    html = client.get("/console/board").text
    assert f'data-order-id="{own.id}"' in html
    assert f'data-order-id="{other.id}"' not in html


def test_a_bad_board_filter_is_a_message_not_an_error(client: TestClient, db: Session) -> None:
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.get("/console", params={"from": "yesterday"})
    assert response.status_code == 200
    assert "from must be a date like 2026-12-01" in response.text


def test_suspending_the_user_ends_the_console_session_at_once(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    admin = make_user(db, role=Role.ADMIN)
    owner = make_store_user(db, store=store)
    sign_in(client, db, owner)
    couriers_service.set_user_status(db, user=owner, status=UserStatus.SUSPENDED)
    assert admin.id  # the admin is who would do it; the service is what it calls
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


def test_sign_out_ends_the_session_row(client: TestClient, db: Session) -> None:
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert db.scalar(select(UserSession.revoked_at)) is not None
    assert client.get("/console", follow_redirects=False).status_code == 303


NEW_ORDER = {
    "recipient_first_name": "Noa",
    "recipient_last_name": "Levi",
    "phone": "+972501234567",
    "street": "Dizengoff",
    "building_no": "100",
    "boxes_count": "2",
}


def test_new_order_form_names_every_missing_field(client: TestClient, db: Session) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post("/console/orders/new", data={"csrf_token": csrf, "boxes_count": "0"})
    assert response.status_code == 422
    for field in ("recipient_first_name", "recipient_last_name", "phone", "street", "building_no"):
        assert f'id="e-{field}"' in response.text, field
    assert 'id="e-boxes_count"' in response.text
    assert "greater than or equal to 1" in response.text
    assert db.scalar(select(func.count()).select_from(Order)) == 0


def test_new_order_form_refuses_a_bad_phone_next_to_the_field(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    data = {**NEW_ORDER, "phone": "call me", "csrf_token": csrf}
    response = client.post("/console/orders/new", data=data)
    assert response.status_code == 422
    assert 'id="e-phone"' in response.text
    assert 'value="Noa"' in response.text  # what was typed stays in the form


def test_an_admin_must_pick_the_store(client: TestClient, db: Session) -> None:
    make_store(db)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post("/console/orders/new", data={**NEW_ORDER, "csrf_token": csrf})
    assert response.status_code == 400 or response.status_code == 422
    assert 'id="e-store_id"' in response.text
    assert db.scalar(select(func.count()).select_from(Order)) == 0


def test_new_order_is_created_once_for_a_double_submit(client: TestClient, db: Session) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    data = {**NEW_ORDER, "csrf_token": csrf, "idempotency_key": "form-1"}
    first = client.post("/console/orders/new", data=data, follow_redirects=False)
    second = client.post("/console/orders/new", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert db.scalar(select(func.count()).select_from(Order)) == 1
    order = db.scalar(select(Order))
    assert order is not None
    assert first.headers["location"] == f"/console/orders/{order.id}"
    assert order.boxes_count == 2


def test_price_preview_follows_the_tiers(client: TestClient, db: Session) -> None:
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    from app.services.pricing import price_for

    multiplier, total = price_for(5)
    html = client.get("/console/orders/price", params={"boxes_count": "5"}).text
    assert f"{multiplier}× tier · total {total}" in html
    assert (
        "Boxes must be 1 to 200"
        in client.get("/console/orders/price", params={"boxes_count": "0"}).text
    )


def test_cancel_with_a_reason_records_it(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(
        f"/console/orders/{order.id}/cancel",
        data={"csrf_token": csrf, "reason": "customer called"},
    )
    assert response.status_code == 200
    assert "customer called" in response.text
    db.refresh(order)
    assert order.status == OrderStatus.CANCELED
    assert order.cancel_reason == "customer called"


def test_a_store_cannot_cancel_a_picked_up_order_and_is_told_why(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    courier = make_user(db, role=Role.COURIER)
    order = make_order(db, store=store, status="picked_up", courier=courier)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(
        f"/console/orders/{order.id}/cancel", data={"csrf_token": csrf, "reason": "late"}
    )
    assert response.status_code == 409
    assert 'id="e-cancel"' in response.text


def test_assign_without_a_courier_says_pick_one(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(f"/console/orders/{order.id}/assign", data={"csrf_token": csrf})
    assert response.status_code == 422
    assert "Pick a courier" in response.text


def test_an_admin_assigns_and_unassigns(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    courier = make_user(db, role=Role.COURIER, name="דני כהן")
    admin = make_user(db, role=Role.ADMIN)
    csrf = sign_in(client, db, admin)
    page = client.get(f"/console/orders/{order.id}").text
    assert "דני כהן — load 0/8 boxes" in page
    client.post(
        f"/console/orders/{order.id}/assign", data={"csrf_token": csrf, "courier_id": courier.id}
    )
    db.refresh(order)
    assert (order.status, order.courier_id) == (OrderStatus.ASSIGNED, courier.id)
    # The timeline names who did it and to whom.
    timeline = client.get(f"/console/orders/{order.id}").text.split('class="card timeline"')[1]
    assert f"by <bdi>{admin.name}</bdi> (admin)" in timeline
    assert "courier <bdi>דני כהן</bdi>" in timeline
    client.post(f"/console/orders/{order.id}/unassign", data={"csrf_token": csrf})
    db.refresh(order)
    assert (order.status, order.courier_id) == (OrderStatus.NEW, None)


def test_a_store_user_may_not_assign(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    courier = make_user(db, role=Role.COURIER)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(
        f"/console/orders/{order.id}/assign", data={"csrf_token": csrf, "courier_id": courier.id}
    )
    assert response.status_code == 403
    db.refresh(order)
    assert order.courier_id is None


def test_edit_shows_the_fields_message_and_saves_a_good_edit(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    bad = client.post(
        f"/console/orders/{order.id}/edit", data={"csrf_token": csrf, "boxes_count": "500"}
    )
    assert bad.status_code == 422
    assert 'id="e-boxes_count"' in bad.text
    good = client.post(
        f"/console/orders/{order.id}/edit",
        data={"csrf_token": csrf, "notes": "ring twice", "version": str(order.version)},
    )
    assert good.status_code == 200
    db.refresh(order)
    assert order.notes == "ring twice"


def test_only_an_admin_deletes(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = make_order(db, store=store)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(f"/console/orders/{order.id}/delete", data={"csrf_token": csrf})
    assert response.status_code == 403
    db.refresh(order)
    assert order.deleted_at is None


def test_vendored_files_match_their_recorded_integrity() -> None:
    recorded = json.loads((STATIC_DIR / "vendor.json").read_text())
    assert recorded, "vendor.json lists the pinned files"
    for name, entry in recorded.items():
        body = (STATIC_DIR / name).read_bytes()
        digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
        assert entry["integrity"] == f"sha384-{digest}", name
        assert entry["version"] in name


def test_static_files_are_cached_for_a_year_and_pages_carry_their_integrity(
    client: TestClient, db: Session
) -> None:
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    html = client.get("/console").text
    for asset in assets().values():
        url = f"/console/static/{asset.version}/{asset.name}"
        assert f'"{url}" integrity="{asset.integrity}"' in html
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/console/static/000000000000/console.js").status_code == 404


def test_console_sign_in_shares_the_apis_login_rate_limit(client: TestClient, db: Session) -> None:
    admin = make_user(db, role=Role.ADMIN)
    token = _login_form(client)
    statuses = []
    # 10 a minute for one identifier from one address (LOGIN_LIMIT_PER_IDENTIFIER_CLIENT).
    for _ in range(11):
        response = client.post(
            "/console/login",
            data={"identifier": admin.email, "password": "wrong password", "csrf_token": token},
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    assert "Too many" in response.text or "too many" in response.text
    # The API counts the same attempts: its next login for the account is refused too.
    api = client.post("/v1/auth/login", json={"identifier": admin.email, "password": PASSWORD})
    assert api.status_code == 429


def test_sign_in_never_redirects_off_the_console(client: TestClient, db: Session) -> None:
    admin = make_user(db, role=Role.ADMIN)
    token = _login_form(client)
    response = client.post(
        "/console/login",
        data={
            "identifier": admin.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/console",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console"


def test_an_htmx_request_without_a_session_is_told_to_navigate(client: TestClient) -> None:
    response = client.get("/console/board", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/console/login")


def test_the_password_never_reaches_the_page_or_the_log(
    client: TestClient, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    admin = make_user(db, role=Role.ADMIN)
    token = _login_form(client)
    response = client.post(
        "/console/login",
        data={"identifier": admin.email, "password": "a secret guess", "csrf_token": token},
    )
    assert "a secret guess" not in response.text
    assert "a secret guess" not in caplog.text
