"""Every action against every status, who may act on whose orders, and repeats that are safe."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, Settings
from app.db.base import utcnow
from app.db.models import OrderEvent
from tests.builders import make_order
from tests.orders_helpers import World

STATUSES = ["new", "assigned", "accepted", "picked_up", "delivered", "failed", "canceled"]
OK, BAD = "ok", "invalid_transition"

Action = Callable[[TestClient, World, int], Response]


def _post(path: str, who: str, body: dict[str, object] | None = None) -> Action:
    def act(client: TestClient, w: World, order_id: int) -> Response:
        payload = dict(body or {})
        if payload.get("courier_id") == "other":
            payload["courier_id"] = w.other_courier.id
        headers: dict[str, str] = getattr(w, who)
        response: Response = client.post(
            f"/v1/orders/{order_id}/{path}", json=payload, headers=headers
        )
        return response

    return act


# action → (callable, {start status: (expected outcome, status afterwards)})
TABLE: dict[str, tuple[Action, dict[str, tuple[str, str]]]] = {
    "claim": (
        _post("claim", "h_courier"),
        {
            "new": (OK, "accepted"),
            "assigned": (OK, "accepted"),
            "accepted": (OK, "accepted"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "decline": (
        _post("decline", "h_courier"),
        {
            "new": (BAD, "new"),
            "assigned": (OK, "new"),
            "accepted": (OK, "new"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "assign": (
        _post("assign", "h_admin", {"courier_id": "other"}),
        {
            "new": (OK, "assigned"),
            "assigned": (OK, "assigned"),
            "accepted": (OK, "assigned"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "unassign": (
        _post("unassign", "h_admin"),
        {
            "new": (OK, "new"),
            "assigned": (OK, "new"),
            "accepted": (OK, "new"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "pick_up": (
        _post("status", "h_courier", {"status": "picked_up"}),
        {
            "new": ("not_found", "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (OK, "picked_up"),
            "picked_up": (OK, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "deliver": (
        _post("status", "h_courier", {"status": "delivered", "note": "Left with neighbour"}),
        {
            "new": ("not_found", "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (OK, "delivered"),
            "delivered": (OK, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "fail": (
        _post("status", "h_admin", {"status": "failed", "reason": "Nobody home"}),
        {
            "new": (BAD, "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (OK, "failed"),
            "delivered": (BAD, "delivered"),
            "failed": (OK, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "fail_with_code": (
        _post("status", "h_courier", {"status": "failed", "reason_code": "recipient_absent"}),
        {
            "new": ("not_found", "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (OK, "failed"),
            "delivered": (BAD, "delivered"),
            "failed": (OK, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "deliver_to_recipient": (
        _post("status", "h_courier", {"status": "delivered", "recipient_name": "Dana"}),
        {
            "new": ("not_found", "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (OK, "delivered"),
            "delivered": (OK, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "cancel_admin": (
        _post("cancel", "h_admin", {"reason": "Customer called"}),
        {
            "new": (OK, "canceled"),
            "assigned": (OK, "canceled"),
            "accepted": (OK, "canceled"),
            "picked_up": (OK, "canceled"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (OK, "canceled"),
        },
    ),
    "cancel_store": (
        _post("cancel", "h_store", {"reason": "Customer called"}),
        {
            "new": (OK, "canceled"),
            "assigned": (OK, "canceled"),
            "accepted": (BAD, "accepted"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (BAD, "failed"),
            "canceled": (OK, "canceled"),
        },
    ),
    "redeliver_to_pool": (
        _post("redeliver", "h_admin"),
        {
            "new": (BAD, "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (OK, "new"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "redeliver_to_courier": (
        _post("redeliver", "h_store", {"courier_id": "other"}),
        {
            "new": (BAD, "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (OK, "assigned"),
            "canceled": (BAD, "canceled"),
        },
    ),
    "return": (
        _post("return", "h_store"),
        {
            "new": (BAD, "new"),
            "assigned": (BAD, "assigned"),
            "accepted": (BAD, "accepted"),
            "picked_up": (BAD, "picked_up"),
            "delivered": (BAD, "delivered"),
            "failed": (OK, "failed"),
            "canceled": (BAD, "canceled"),
        },
    ),
}

CASES = [(action, status) for action in TABLE for status in STATUSES]


@pytest.mark.parametrize(("action", "status"), CASES, ids=[f"{a}-from-{s}" for a, s in CASES])
def test_transition_table(
    client: TestClient, db: Session, world: World, action: str, status: str
) -> None:
    courier = None if status == "new" else world.courier
    order = make_order(db, store=world.store, status=status, courier=courier)
    act, table = TABLE[action]
    expected, after = table[status]
    events_before = db.query(OrderEvent).filter_by(order_id=order.id).count()
    response = act(client, world, order.id)
    if expected == OK:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == after
    else:
        assert response.status_code == (404 if expected == "not_found" else 409), response.text
        assert response.json()["code"] == expected
    current = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
    assert current["status"] == after
    changed = current["version"] != 1
    events_after = db.query(OrderEvent).filter_by(order_id=order.id).count()
    # An event is written exactly when the order changed.
    assert events_after - events_before == (1 if changed else 0)


def test_transition_events_record_who_when_from_to_and_why(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier)
    client.post(
        f"/v1/orders/{order.id}/status", json={"status": "picked_up"}, headers=world.h_courier
    )
    client.post(
        f"/v1/orders/{order.id}/status",
        json={"status": "failed", "reason": "Wrong address"},
        headers=world.h_courier,
    )
    events = client.get(f"/v1/orders/{order.id}/events", headers=world.h_admin).json()
    assert [(e["type"], e["from_status"], e["to_status"]) for e in events] == [
        ("order.accepted", "new", "accepted"),
        ("order.status_changed", "accepted", "picked_up"),
        ("order.status_changed", "picked_up", "failed"),
    ]
    assert all(e["actor_id"] == world.courier.id and e["actor_role"] == "courier" for e in events)
    assert events[-1]["reason"] == "Wrong address"
    assert all(e["created_at"] for e in events)
    final = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
    assert final["failure_reason"] == "Wrong address"
    assert final["failed_at"]
    assert final["picked_up_at"]
    assert final["accepted_at"]


def test_failing_without_a_reason_is_422(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = client.post(
        f"/v1/orders/{order.id}/status", json={"status": "failed"}, headers=world.h_courier
    )
    assert response.status_code == 422


def test_unknown_status_is_422(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    response = client.post(
        f"/v1/orders/{order.id}/status", json={"status": "teleported"}, headers=world.h_courier
    )
    assert response.status_code == 422


def test_double_tap_claim_is_200_twice_with_one_event(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    first = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier)
    second = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert db.query(OrderEvent).filter_by(order_id=order.id, type="order.accepted").count() == 1


def test_claim_of_an_order_another_courier_took_is_409(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    assert client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier).status_code == 200
    response = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_other_courier)
    assert response.status_code == 409
    assert response.json()["code"] == "order_already_taken"
    assert "Levi" not in response.text


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_losing_claim_reads_who_holds_the_order_and_nothing_else(
    client: TestClient, db: Session, world: World, statements: list[str]
) -> None:
    """Most claims in a rush lose: they are refused from one column (docs/performance.md
    "The losing claim"), never by reading the whole order or locking the courier."""
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    client.get("/v1/auth/me", headers=world.h_other_courier)  # warm: the principal
    statements.clear()
    response = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_other_courier)
    assert response.status_code == 409
    assert response.json()["code"] == "order_already_taken"
    reads = [s for s in statements if "FROM orders" in s or "FROM users" in s]
    assert len(reads) == 1
    assert reads[0].startswith("SELECT orders.courier_id \nFROM orders")
    assert not [s for s in statements if s.startswith(("UPDATE", "INSERT"))]


def test_claim_of_a_deleted_or_missing_order_is_404(
    client: TestClient, db: Session, world: World
) -> None:
    deleted = make_order(db, store=world.store)
    deleted.deleted_at = utcnow()
    db.flush()
    for order_id in (deleted.id, 999_999):
        response = client.post(f"/v1/orders/{order_id}/claim", headers=world.h_courier)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_in_assign_mode_an_order_another_courier_holds_is_409(
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.ASSIGN)
    for status in ("assigned", "accepted"):
        order = make_order(db, store=world.store, status=status, courier=world.other_courier)
        response = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier)
        assert response.status_code == 409
        assert response.json()["code"] == "order_already_taken"


def test_claim_past_capacity_is_409(client: TestClient, db: Session, world: World) -> None:
    make_order(db, store=world.store, status="accepted", courier=world.courier, boxes_count=6)
    big = make_order(db, store=world.store, boxes_count=3)
    response = client.post(f"/v1/orders/{big.id}/claim", headers=world.h_courier)
    assert response.status_code == 409
    assert response.json()["code"] == "capacity_exceeded"
    small = make_order(db, store=world.store, boxes_count=2)
    assert client.post(f"/v1/orders/{small.id}/claim", headers=world.h_courier).status_code == 200


def test_assign_to_a_non_courier_or_inactive_courier_is_422(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    for target in (world.store_user.id, 999_999):
        response = client.post(
            f"/v1/orders/{order.id}/assign", json={"courier_id": target}, headers=world.h_admin
        )
        assert response.status_code == 422


def test_assigned_courier_sees_and_accepts_in_assign_mode(
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.ASSIGN)
    pool = make_order(db, store=world.store)
    assert client.post(f"/v1/orders/{pool.id}/claim", headers=world.h_courier).status_code == 404
    client.post(
        f"/v1/orders/{pool.id}/assign", json={"courier_id": world.courier.id}, headers=world.h_admin
    )
    accepted = client.post(f"/v1/orders/{pool.id}/accept", headers=world.h_courier)
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"


ENDPOINTS = [
    ("GET", "/v1/orders/{id}", None),
    ("GET", "/v1/orders/{id}/events", None),
    ("PATCH", "/v1/orders/{id}", {"notes": "x"}),
    ("DELETE", "/v1/orders/{id}", None),
    ("POST", "/v1/orders/{id}/claim", None),
    ("POST", "/v1/orders/{id}/accept", None),
    ("POST", "/v1/orders/{id}/decline", None),
    ("POST", "/v1/orders/{id}/assign", {"courier_id": 1}),
    ("POST", "/v1/orders/{id}/unassign", None),
    ("POST", "/v1/orders/{id}/status", {"status": "picked_up"}),
    ("POST", "/v1/orders/{id}/cancel", {"reason": "x"}),
    ("GET", "/v1/orders/{id}/proofs", None),
    ("POST", "/v1/orders/{id}/redeliver", None),
    ("POST", "/v1/orders/{id}/return", None),
    ("GET", "/v1/orders/{id}/proof-policy", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("caller", ["h_other_store", "h_other_courier", None])
def test_tenancy_matrix_never_leaks_data(
    client: TestClient,
    db: Session,
    world: World,
    method: str,
    path: str,
    body: dict[str, object] | None,
    caller: str | None,
) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    headers = getattr(world, caller) if caller else {}
    response = client.request(method, path.format(id=order.id), json=body, headers=headers)
    if caller is None:
        assert response.status_code == 401
    elif path.endswith(("/claim", "/accept")) and caller == "h_other_courier":
        assert response.status_code == 409  # it is taken: says so, and nothing more
    else:
        assert response.status_code in (403, 404), response.text
    assert "Levi" not in response.text
    assert "Dizengoff" not in response.text
    after = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
    assert after["status"] == "accepted"
    assert after["version"] == 1


def test_events_feed_of_another_stores_order_is_404(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.other_store)
    assert client.get(f"/v1/orders/{order.id}/events", headers=world.h_store).status_code == 404


# Who may attempt an action at all is decided at the route, by role alone, before the order is
# read; the service refuses only what depends on the order's state (a 409 or a 404).
ROLE_REFUSALS = [
    ("POST", "/v1/orders/{id}/status", {"status": "picked_up"}, "h_store"),
    ("POST", "/v1/orders/{id}/cancel", {"reason": "x"}, "h_courier"),
    ("PATCH", "/v1/orders/{id}", {"notes": "x"}, "h_courier"),
    ("POST", "/v1/orders/{id}/claim", None, "h_store"),
    ("POST", "/v1/orders/{id}/assign", {"courier_id": 1}, "h_store"),
    ("DELETE", "/v1/orders/{id}", None, "h_courier"),
    ("POST", "/v1/orders/{id}/redeliver", None, "h_courier"),
    ("POST", "/v1/orders/{id}/return", None, "h_courier"),
]


@pytest.mark.parametrize(("method", "path", "body", "caller"), ROLE_REFUSALS)
def test_a_role_that_may_never_do_an_action_is_refused_at_the_route(
    client: TestClient,
    db: Session,
    world: World,
    method: str,
    path: str,
    body: dict[str, object] | None,
    caller: str,
) -> None:
    # The order is the caller's own (the store's, or held by the courier): only the role refuses.
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    response = client.request(
        method, path.format(id=order.id), json=body, headers=getattr(world, caller)
    )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    after = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
    assert (after["status"], after["version"]) == ("accepted", 1)
