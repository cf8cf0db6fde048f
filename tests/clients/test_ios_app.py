"""The iOS courier and store app, screen by screen: each test makes one call the way it does."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, Settings
from app.db.base import utcnow
from app.db.models import Role, Store, StoreMembership
from tests.builders import PASSWORD, make_order, make_store, make_store_user, make_user
from tests.clients.conftest import World, add_orders, signed_in_app
from tests.clients.contract import IOS_ORDER, ClientError, IosApp, ipad_order_body, swift_decode


def test_sign_in_decodes_the_token_answer(client: TestClient, db: Session) -> None:
    make_user(db, role=Role.COURIER, email="rider@zariz.example")
    app = IosApp(client)
    data = app.login("rider@zariz.example", PASSWORD)  # AuthService.login: POST auth/login
    assert data["token_type"] == "bearer"
    assert data["user"]["role"] == "courier"


def test_session_refresh_decodes_the_new_pair(courier_app: IosApp) -> None:
    before = courier_app.refresh_token
    courier_app.refresh()  # AuthSession.validAccessToken() near expiry
    assert courier_app.refresh_token != before
    assert courier_app.sync() == []


def test_push_registration_answers_json(courier_app: IosApp) -> None:
    # PushManager.registerDeviceWithBackend: {platform, token} only, hex token.
    response = courier_app.request(
        "POST", "devices/register", {"platform": "ios", "token": "ab" * 32}
    )
    assert response.status_code == 200
    assert response.json()["platform"] == "ios"


def test_sign_out_with_only_the_bearer_header_ends_the_session(courier_app: IosApp) -> None:
    # AuthService.logout(): POST auth/logout with the Bearer token and no body.
    response = courier_app.request("POST", "auth/logout")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    with pytest.raises(ClientError):
        courier_app.refresh()
    assert courier_app.request("GET", "auth/me").status_code == 401


def test_sign_out_without_a_body_or_a_token_is_401(client: TestClient) -> None:
    response = IosApp(client).request("POST", "auth/logout")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


# ---- the courier's orders screen: OrdersService.sync() every 30 s and after every action


def test_courier_orders_sync_includes_an_old_assigned_order_behind_110_newer(
    courier_app: IosApp, db: Session, world: World
) -> None:
    assigned = make_order(db, store=world.store, status="assigned", courier=world.courier)
    add_orders(db, store=world.store, count=110)  # the open pool, all newer
    synced = courier_app.sync()
    assert assigned.id in {o["id"] for o in synced}
    assert len(synced) == 111


def test_courier_orders_sync_drops_an_order_after_a_decline_in_assign_mode(
    courier_app: IosApp,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.ASSIGN)
    order = make_order(db, store=world.store, status="assigned", courier=world.courier)
    assert [o["id"] for o in courier_app.sync()] == [order.id]
    courier_app.action(f"orders/{order.id}/decline")
    assert courier_app.sync() == []


def test_courier_orders_sync_shows_a_declined_order_only_as_pool_in_open_mode(
    courier_app: IosApp, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="assigned", courier=world.courier)
    courier_app.action(f"orders/{order.id}/decline")
    (after,) = courier_app.sync()
    assert (after["id"], after["status"], after["courier_id"]) == (order.id, "new", None)


def test_courier_orders_sync_keeps_the_configured_days_of_history(
    courier_app: IosApp, db: Session, world: World, settings: Settings
) -> None:
    recent = make_order(db, store=world.store, status="delivered", courier=world.courier)
    old = make_order(db, store=world.store, status="delivered", courier=world.courier)
    failed_old = make_order(db, store=world.store, status="failed", courier=world.courier)
    active = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    days = settings.courier_history_days
    recent.delivered_at = utcnow() - timedelta(days=days - 1)
    old.delivered_at = utcnow() - timedelta(days=days + 1)
    failed_old.failed_at = utcnow() - timedelta(days=days + 30)
    db.commit()
    assert {o["id"] for o in courier_app.sync()} == {recent.id, active.id}
    # A client that pages (limit) walks the whole history.
    paged = courier_app.request("GET", "orders?limit=500").json()
    assert {o["id"] for o in paged} == {recent.id, old.id, failed_old.id, active.id}


def test_courier_orders_sync_never_shows_another_couriers_order(
    courier_app: IosApp, db: Session, world: World
) -> None:
    make_order(db, store=world.store, status="accepted", courier=world.other_courier)
    assert courier_app.sync() == []


def test_courier_order_detail_claim_pick_up_deliver(
    courier_app: IosApp, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, boxes_count=3)
    # claim(id), updateStatus(id, status): POST, no body or {"status": ...}, Idempotency-Key.
    swift_decode(IOS_ORDER, courier_app.action(f"orders/{order.id}/claim"))
    swift_decode(
        IOS_ORDER, courier_app.action(f"orders/{order.id}/status", {"status": "picked_up"})
    )
    done = courier_app.action(f"orders/{order.id}/status", {"status": "delivered"})
    assert swift_decode(IOS_ORDER, done)["status"] == "delivered"
    assert [o["status"] for o in courier_app.sync()] == ["delivered"]


def test_courier_claim_of_a_taken_order_is_a_409(
    courier_app: IosApp, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.other_courier)
    with pytest.raises(ClientError) as refused:
        courier_app.action(f"orders/{order.id}/claim")
    assert refused.value.status in (404, 409)


# ---- the store iPad: NewOrderView and its orders list


def test_store_ipad_new_order_without_store_id_and_an_empty_pickup_field(
    store_ipad: IosApp, world: World
) -> None:
    created = store_ipad.create_order(ipad_order_body(pickup_address=""))
    swift_decode(IOS_ORDER, created)
    assert created["store_id"] == world.store.id
    assert created["pickup_address"] == world.store.pickup_address  # the store's, not ""
    assert created["delivery_address"] == "Dizengoff 100"


def test_store_ipad_new_order_with_its_own_pickup_and_floor(store_ipad: IosApp) -> None:
    body = ipad_order_body(pickup_address="Warehouse B", floor="3", apartment="12", boxes=9)
    created = store_ipad.create_order(body)
    assert (created["pickup_address"], created["floor"], created["price_total"]) == (
        "Warehouse B",
        "3",
        70,
    )
    assert created["delivery_address"] == "Dizengoff 100, 3, 12"


def test_store_ipad_new_order_for_a_store_without_pickup_address(
    client: TestClient, db: Session
) -> None:
    store = Store(name="Bare Store", status="active")
    db.add(store)
    db.commit()
    ipad = signed_in_app(client, db, make_store_user(db, store=store))
    created = ipad.create_order(ipad_order_body(pickup_address=""))
    assert swift_decode(IOS_ORDER, created)["pickup_address"] is None
    assert [o["id"] for o in ipad.sync()] == [created["id"]]


def test_store_ipad_orders_list_is_complete_and_only_its_own(
    store_ipad: IosApp, db: Session, world: World
) -> None:
    add_orders(db, store=world.store, count=120, status="delivered", courier=world.courier)
    add_orders(db, store=make_store(db), count=3)
    synced = store_ipad.sync()
    assert len(synced) == 120
    assert {o["store_id"] for o in synced} == {world.store.id}


def test_store_ipad_of_a_two_store_account_must_name_the_store(
    client: TestClient, db: Session, world: World
) -> None:
    second = make_store(db)
    db.add(StoreMembership(user_id=world.store_user.id, store_id=second.id, role_in_store="owner"))
    db.commit()
    ipad = signed_in_app(client, db, world.store_user)
    with pytest.raises(ClientError) as refused:
        ipad.create_order(ipad_order_body())
    assert refused.value.status == 422
