"""A suspended or offboarded store grants its users nothing: login, refresh, scope, feed, push."""

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.models import EventType, OrderEvent, Role, Store, StoreMembership, StoreRole, User
from app.services.events import record_event
from app.services.visibility import audience
from tests.builders import (
    PASSWORD,
    auth_headers,
    login_tokens,
    make_order,
    make_store,
    make_store_user,
    make_user,
)
from tests.sse_live import LiveDatabase, LiveServer, reading, start_server


def _login(client: TestClient, identifier: str) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/auth/login_password", json={"identifier": identifier, "password": PASSWORD}
    )
    return response


def _set_status(db: Session, store: Store, status: str) -> None:
    # Straight in the database, without the admin endpoint's session revocation: what must
    # hold is that the store's status alone decides, whatever sessions are still around.
    db.execute(update(Store).where(Store.id == store.id).values(status=status))
    db.commit()


def _event(db: Session, store: Store) -> OrderEvent:
    order = make_order(db, store=store)
    event = record_event(
        db,
        order=order,
        type=EventType.CREATED,
        actor=None,
        before=None,
    )
    db.commit()
    return event


INACTIVE = ["suspended", "offboarded"]


class TestEveryStoreInactive:
    @pytest.mark.parametrize("status", INACTIVE)
    def test_login_is_403_account_inactive(
        self, client: TestClient, db: Session, status: str
    ) -> None:
        store = make_store(db)
        user = make_store_user(db, store=store)
        _set_status(db, store, status)
        response = client.post(
            "/v1/auth/login_password", json={"identifier": user.email, "password": PASSWORD}
        )
        assert response.status_code == 403
        assert response.json()["code"] == "account_inactive"

    @pytest.mark.parametrize("status", INACTIVE)
    def test_refresh_is_403_account_inactive(
        self, client: TestClient, db: Session, status: str
    ) -> None:
        store = make_store(db)
        user = make_store_user(db, store=store)
        _, refresh = login_tokens(db, user)
        _set_status(db, store, status)
        response = client.post("/v1/auth/refresh", json={"refresh_token": refresh})
        assert response.status_code == 403
        assert response.json()["code"] == "account_inactive"

    @pytest.mark.parametrize(
        "path",
        ["/v1/auth/me", "/v1/orders", "/v1/orders/export.csv", "/v1/events", "/v1/stores"],
    )
    def test_every_request_with_an_earlier_token_is_403_account_inactive(
        self, client: TestClient, db: Session, path: str
    ) -> None:
        store = make_store(db)
        user = make_store_user(db, store=store)
        headers = auth_headers(db, user)
        assert client.get(path, headers=headers).status_code == 200
        _set_status(db, store, "suspended")
        response = client.get(path, headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "account_inactive"

    def test_changing_or_cancelling_an_order_is_403_account_inactive(
        self, client: TestClient, db: Session
    ) -> None:
        store = make_store(db)
        user = make_store_user(db, store=store)
        order = make_order(db, store=store)
        headers = auth_headers(db, user)
        _set_status(db, store, "suspended")
        edit = client.patch(f"/v1/orders/{order.id}", json={"notes": "x"}, headers=headers)
        cancel = client.post(
            f"/v1/orders/{order.id}/cancel", json={"reason": "closed"}, headers=headers
        )
        assert (edit.status_code, cancel.status_code) == (403, 403)
        db.refresh(order)
        assert order.status == "new"
        assert order.notes is None

    def test_reactivating_the_store_lets_its_users_back_in(
        self, client: TestClient, db: Session
    ) -> None:
        store = make_store(db)
        user = make_store_user(db, store=store)
        _set_status(db, store, "suspended")
        assert _login(client, user.email or "").status_code == 403
        _set_status(db, store, "active")
        assert _login(client, user.email or "").status_code == 200

    def test_suspending_through_the_admin_api_keeps_its_users_out(
        self, client: TestClient, db: Session
    ) -> None:
        store = make_store(db)
        user = make_store_user(db, store=store)
        admin_headers = auth_headers(db, make_user(db, role=Role.ADMIN))
        response = client.post(
            f"/v1/admin/stores/{store.id}/status",
            json={"status": "suspended"},
            headers=admin_headers,
        )
        assert response.status_code == 200
        login = _login(client, user.email or "")
        assert login.status_code == 403
        assert login.json()["code"] == "account_inactive"


@pytest.fixture
def two_stores(db: Session) -> tuple[Store, Store, User]:
    """A user of an active store and of a suspended one."""
    active, suspended = make_store(db), make_store(db)
    user = make_store_user(db, store=active)
    db.add(StoreMembership(user_id=user.id, store_id=suspended.id, role_in_store=StoreRole.STAFF))
    db.commit()
    return active, suspended, user


class TestOneStoreOfSeveralInactive:
    def test_login_works_and_lists_only_the_active_store(
        self, client: TestClient, db: Session, two_stores: tuple[Store, Store, User]
    ) -> None:
        active, suspended, user = two_stores
        _set_status(db, suspended, "suspended")
        response = _login(client, user.email or "")
        assert response.status_code == 200
        assert response.json()["user"]["store_ids"] == [active.id]

    def test_orders_csv_feed_and_stores_show_only_the_active_store(
        self, client: TestClient, db: Session, two_stores: tuple[Store, Store, User]
    ) -> None:
        active, suspended, user = two_stores
        headers = auth_headers(db, user)
        mine, hidden = _event(db, active), _event(db, suspended)
        _set_status(db, suspended, "suspended")

        orders = client.get("/v1/orders", headers=headers).json()
        assert [o["id"] for o in orders] == [mine.order_id]
        assert client.get(f"/v1/orders/{hidden.order_id}", headers=headers).status_code == 404
        csv = client.get("/v1/orders/export.csv", headers=headers).text
        assert len(csv.strip().splitlines()) == 2  # header and the active store's order
        feed = client.get("/v1/events", headers=headers).json()
        assert [e["event_id"] for e in feed["events"]] == [mine.id]
        stores = client.get("/v1/stores", headers=headers).json()
        assert [s["id"] for s in stores] == [active.id]

    def test_orders_of_the_inactive_store_cannot_be_changed(
        self, client: TestClient, db: Session, two_stores: tuple[Store, Store, User]
    ) -> None:
        _, suspended, user = two_stores
        order = make_order(db, store=suspended)
        headers = auth_headers(db, user)
        _set_status(db, suspended, "offboarded")
        response = client.patch(f"/v1/orders/{order.id}", json={"notes": "x"}, headers=headers)
        assert response.status_code == 404
        cancel = client.post(
            f"/v1/orders/{order.id}/cancel", json={"reason": "closed"}, headers=headers
        )
        assert cancel.status_code == 404
        db.refresh(order)
        assert order.status == "new"
        assert order.notes is None


def test_push_audience_leaves_out_the_users_of_an_inactive_store(db: Session) -> None:
    store = make_store(db)
    user = make_store_user(db, store=store)
    admin = make_user(db, role=Role.ADMIN)
    event = _event(db, store)
    assert {user.id, admin.id} <= audience(db, event)
    _set_status(db, store, "suspended")
    assert user.id not in audience(db, event)
    assert admin.id in audience(db, event)


# --- an open stream ends once the store it was opened for is no longer active ------------------


@pytest.fixture(scope="module")
def server(live_db: LiveDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("inactive-server")
    server = start_server(live_db.url, tmp, sse_poll_seconds="0.2")
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("stores", [1, 2])
def test_an_open_stream_ends_when_a_store_it_covers_is_suspended(
    server: LiveServer, live_db: LiveDatabase, stores: int
) -> None:
    with live_db.session() as s:
        store, other = make_store(s), make_store(s)
        user = make_store_user(s, store=store)
        if stores == 2:
            s.add(StoreMembership(user_id=user.id, store_id=other.id, role_in_store="staff"))
            s.commit()
        token = login_tokens(s, user)[0]
    with reading(server.base_url, token) as sse:
        assert sse.next().retry is not None
        with live_db.session() as s:
            s.execute(update(Store).where(Store.id == store.id).values(status="suspended"))
            s.commit()
        # wait_end raises queue.Empty if the stream is still open after the timeout.
        before_end = sse.wait_end(timeout=5)
        assert before_end[-1].comment == "session ended"
