"""Races with real threads, real HTTP and real commits: exactly one winner, capacity held."""

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import httpx2 as httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import LOAD_STATUSES, Order, OrderEvent, Role
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user
from tests.orders_helpers import ORDER_BODY

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def together(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Runs every call on its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def post(
    base: str, path: str, headers: dict[str, str], **kw: object
) -> Callable[[], httpx.Response]:
    return lambda: httpx.post(f"{base}{path}", headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def test_fifty_couriers_claim_one_order_exactly_one_wins(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    order = make_order(committed, store=store)
    couriers = [make_user(committed) for _ in range(50)]
    calls = [
        post(live_server, f"/v1/orders/{order.id}/claim", auth_headers(committed, c))
        for c in couriers
    ]
    responses = together(calls)
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 1, 409: 49}, codes
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"order_already_taken"}
    winner = next(r.json() for r in responses if r.status_code == 200)
    committed.expire_all()
    assert committed.get(Order, order.id).courier_id == winner["courier_id"]  # type: ignore[union-attr]
    accepted = committed.scalar(
        select(func.count())
        .select_from(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.type == "order.accepted")
    )
    assert accepted == 1


def test_one_courier_taking_many_orders_at_once_never_exceeds_capacity(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    courier = make_user(committed, capacity_boxes=8)
    orders = [make_order(committed, store=store, boxes_count=3) for _ in range(10)]
    headers = auth_headers(committed, courier)
    responses = together([post(live_server, f"/v1/orders/{o.id}/claim", headers) for o in orders])
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 2, 409: 8}, codes
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"capacity_exceeded"}
    load = committed.scalar(
        select(func.sum(Order.boxes_count)).where(
            Order.courier_id == courier.id, Order.status.in_(LOAD_STATUSES)
        )
    )
    assert load == 6


def test_ten_concurrent_creates_with_one_key_make_one_order(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    user = make_store_user(committed, store=store)
    headers = {**auth_headers(committed, user), "Idempotency-Key": str(uuid.uuid4())}
    responses = together(
        [post(live_server, "/v1/orders", headers, json=ORDER_BODY) for _ in range(10)]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert committed.scalar(select(func.count()).select_from(Order)) == 1


def test_same_key_with_a_different_body_is_422(committed: Session, live_server: str) -> None:
    store = make_store(committed)
    user = make_store_user(committed, store=store)
    headers = {**auth_headers(committed, user), "Idempotency-Key": "key-1"}
    first = httpx.post(f"{live_server}/v1/orders", json=ORDER_BODY, headers=headers)
    assert first.status_code == 201
    other = httpx.post(
        f"{live_server}/v1/orders", json={**ORDER_BODY, "boxes_count": 9}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert committed.scalar(select(func.count()).select_from(Order)) == 1


def test_admin_and_couriers_racing_on_one_order_leave_a_consistent_trail(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    admin = make_user(committed, role=Role.ADMIN)
    order = make_order(committed, store=store)
    couriers = [make_user(committed) for _ in range(5)]
    calls = [
        post(live_server, f"/v1/orders/{order.id}/claim", auth_headers(committed, c))
        for c in couriers
    ]
    calls.append(
        post(
            live_server,
            f"/v1/orders/{order.id}/cancel",
            auth_headers(committed, admin),
            json={"reason": "x"},
        )
    )
    responses = together(calls)
    codes = Counter(r.status_code for r in responses)
    # Every request got an answer a client can act on: a success or a clear 409, never a 5xx.
    assert set(codes) <= {200, 409}, [r.text for r in responses]
    # An admin may cancel a new or an accepted order, so the cancel always wins its turn; at most
    # one courier got the order first.
    assert responses[-1].status_code == 200, responses[-1].text
    assert codes[200] in (1, 2), codes
    events = committed.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    ).all()
    # One event per success, none per refusal.
    assert len(events) == codes[200]
    # Each event starts where the previous one ended: no transition from a state already left.
    status = "new"
    for event in events:
        assert event.from_status == status
        status = event.to_status or status
    assert status == "canceled"
    committed.expire_all()
    assert committed.get(Order, order.id).status == status  # type: ignore[union-attr]


def test_one_courier_taking_many_orders_with_keys_never_deadlocks(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    courier = make_user(committed, capacity_boxes=8)
    orders = [make_order(committed, store=store, boxes_count=3) for _ in range(10)]
    headers = auth_headers(committed, courier)
    calls = [
        post(live_server, f"/v1/orders/{o.id}/claim", {**headers, "Idempotency-Key": f"c-{o.id}"})
        for o in orders
    ]
    responses = together(calls)
    # Each key row takes KEY SHARE on the courier's row; the capacity check's FOR NO KEY UPDATE
    # does not wait for it, so no two claims deadlock (which used to surface as 503).
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 2, 409: 8}, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"capacity_exceeded"}


def test_concurrent_duplicates_of_one_keyed_claim_run_it_once_and_replay_it(
    committed: Session, live_server: str
) -> None:
    order = make_order(committed, store=make_store(committed))
    courier = make_user(committed)
    headers = {**auth_headers(committed, courier), "Idempotency-Key": "claim-once"}
    responses = together([post(live_server, f"/v1/orders/{order.id}/claim", headers)] * 8)
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    # One ran the claim; the others waited on the key's unique index and replayed it.
    replayed = Counter(r.headers.get("idempotent-replayed") for r in responses)
    assert replayed == {None: 1, "true": 7}
    assert {r.json()["courier_id"] for r in responses} == {courier.id}
    accepted = committed.scalar(
        select(func.count())
        .select_from(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.type == "order.accepted")
    )
    assert accepted == 1
