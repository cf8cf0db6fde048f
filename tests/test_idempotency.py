"""Idempotency-Key on creates and actions: replayed per user, refused when reused differently."""

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import IdempotencyKey, Order, OrderEvent
from app.services.idempotency import fingerprint
from tests.builders import make_order
from tests.orders_helpers import ORDER_BODY, World


def test_repeat_create_replays_the_stored_response(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_store, "Idempotency-Key": "abc"}
    first = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    second = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert db.query(Order).count() == 1


def test_key_order_of_json_does_not_matter(client: TestClient, db: Session, world: World) -> None:
    headers = {**world.h_store, "Idempotency-Key": "reordered"}
    client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    reordered = dict(reversed(list(ORDER_BODY.items())))
    assert client.post("/v1/orders", json=reordered, headers=headers).status_code == 201
    assert db.query(Order).count() == 1


def test_same_key_different_body_is_422_and_changes_nothing(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_store, "Idempotency-Key": "abc"}
    client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    response = client.post("/v1/orders", json={**ORDER_BODY, "boxes_count": 5}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert db.query(Order).count() == 1


def test_keys_are_scoped_to_the_user(client: TestClient, db: Session, world: World) -> None:
    client.post("/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "k"})
    other = client.post(
        "/v1/orders",
        json={**ORDER_BODY, "store_id": world.other_store.id},
        headers={**world.h_admin, "Idempotency-Key": "k"},
    )
    assert other.status_code == 201
    assert db.query(Order).count() == 2


def test_action_replay_renders_the_order_as_it_is_now_and_runs_nothing(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    headers = {**world.h_courier, "Idempotency-Key": "claim-1"}
    first = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    client.post(
        f"/v1/orders/{order.id}/status", json={"status": "picked_up"}, headers=world.h_courier
    )
    replay = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    # The key records the order, not a response: a replay shows the order's current state.
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["status"] == "picked_up"
    assert replay.json()["version"] == first.json()["version"] + 1
    assert db.query(OrderEvent).filter_by(order_id=order.id, type="order.accepted").count() == 1


def test_a_failed_request_is_not_stored_so_a_retry_runs(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, boxes_count=9)
    headers = {**world.h_courier, "Idempotency-Key": "retry"}
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 409
    world.courier.capacity_boxes = 20
    db.commit()
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 200


def test_overlong_key_is_422(client: TestClient, world: World) -> None:
    response = client.post(
        "/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "k" * 300}
    )
    assert response.status_code == 422


def test_a_key_expires_after_24_hours(client: TestClient, db: Session, world: World) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.db.base import utcnow
    from app.db.models import IdempotencyKey

    headers = {**world.h_store, "Idempotency-Key": "old"}
    client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    db.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    db.commit()
    again = client.post("/v1/orders", json={**ORDER_BODY, "boxes_count": 4}, headers=headers)
    assert again.status_code == 201
    assert db.query(Order).count() == 2
    assert db.query(IdempotencyKey).count() == 1


def test_the_key_records_the_order_it_produced_and_its_status_code(
    client: TestClient, db: Session, world: World
) -> None:
    response = client.post(
        "/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "rec"}
    )
    key = db.query(IdempotencyKey).one()
    assert (key.order_id, key.status_code) == (response.json()["id"], 201)


def test_create_replay_is_201_with_the_order_as_it_is_now(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_store, "Idempotency-Key": "now"}
    first = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    order_id = first.json()["id"]
    client.patch(f"/v1/orders/{order_id}", json={"notes": "ring twice"}, headers=world.h_store)
    replay = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert (replay.json()["id"], replay.json()["notes"]) == (order_id, "ring twice")
    assert db.query(Order).count() == 1


def test_a_keyed_no_op_action_stores_its_key_too(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    headers = {**world.h_courier, "Idempotency-Key": "again"}
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 200
    key = db.query(IdempotencyKey).one()
    assert (key.order_id, key.status_code) == (order.id, 200)


def test_a_keyed_action_on_a_missing_order_is_404_and_stores_no_key(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_courier, "Idempotency-Key": "ghost"}
    response = client.post("/v1/orders/987654/claim", headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert db.query(IdempotencyKey).count() == 0


def test_a_refused_keyed_action_stores_no_key(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, boxes_count=9)
    headers = {**world.h_courier, "Idempotency-Key": "refused"}
    response = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    assert response.json()["code"] == "capacity_exceeded"
    assert db.query(IdempotencyKey).count() == 0


def test_a_replay_answers_only_what_the_caller_may_see_now(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    headers = {**world.h_courier, "Idempotency-Key": "mine-then-not"}
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 200
    reassigned = client.post(
        f"/v1/orders/{order.id}/assign",
        json={"courier_id": world.other_courier.id},
        headers=world.h_admin,
    )
    assert reassigned.status_code == 200
    replay = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    assert replay.status_code == 404
    assert replay.json()["code"] == "not_found"
    assert "Levi" not in replay.text


def test_a_key_without_a_recorded_order_answers_409_in_progress(
    client: TestClient, db: Session, world: World
) -> None:
    # What migration 0005 leaves of a key whose outcome the old two-transaction code lost.
    db.add(
        IdempotencyKey(
            user_id=world.store_user.id,
            key="lost",
            method="POST",
            path="/v1/orders",
            request_hash=fingerprint("POST", "/v1/orders", json.dumps(ORDER_BODY).encode()),
            status_code=201,
        )
    )
    db.commit()
    response = client.post(
        "/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "lost"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert db.query(Order).count() == 0


def test_unkeyed_requests_store_nothing(client: TestClient, db: Session, world: World) -> None:
    response = client.post("/v1/orders", json=ORDER_BODY, headers=world.h_store)
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert db.query(IdempotencyKey).count() == 0
