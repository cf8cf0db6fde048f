"""GET /v1/events (the pull feed) and the refusals of GET /v1/events/sse."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, Settings
from app.db.base import utcnow
from app.db.models import EventType, OrderEvent, Role, Store, User
from app.services.events import record_event
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user


def add_event(
    db: Session,
    *,
    store: Store,
    courier: User | None = None,
    status: str = "new",
    type: EventType = EventType.CREATED,
) -> int:
    order = make_order(db, store=store, courier=courier, status=status)
    event = record_event(
        db,
        order=order,
        type=type,
        actor=None,
        before=None,
    )
    db.commit()
    return event.id


def feed(client: TestClient, headers: dict[str, str], **params: int) -> dict:  # type: ignore[type-arg]
    response = client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/sse"])
def test_missing_or_bad_token_is_401(client: TestClient, path: str) -> None:
    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(path, params={"token": "nope"}).status_code == 401


def test_sse_refuses_a_suspended_users_token(client: TestClient, db: Session) -> None:
    courier = make_user(db)
    headers = auth_headers(db, courier)
    db.execute(update(User).where(User.id == courier.id).values(status="suspended"))
    db.commit()
    assert client.get("/v1/events/sse", headers=headers).status_code == 401


@pytest.mark.parametrize("value", ["abc", "-1", str(2**63)])
def test_sse_refuses_a_malformed_last_event_id(client: TestClient, db: Session, value: str) -> None:
    headers = {**auth_headers(db, make_user(db)), "Last-Event-ID": value}
    response = client.get("/v1/events/sse", headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    query = client.get("/v1/events/sse", params={"last_event_id": value}, headers=headers)
    assert query.status_code == 422


def test_feed_is_oldest_first_and_pages_by_cursor(client: TestClient, db: Session) -> None:
    store = make_store(db)
    headers = auth_headers(db, make_user(db, role=Role.ADMIN))
    first, second, third = (add_event(db, store=store) for _ in range(3))
    page = feed(client, headers, after=first - 1, limit=2)
    assert [e["event_id"] for e in page["events"]] == [first, second]
    assert page["last_event_id"] == second
    page = feed(client, headers, after=second, limit=2)
    assert [e["event_id"] for e in page["events"]] == [third]
    empty = feed(client, headers, after=third)
    assert empty == {"events": [], "last_event_id": third}


def test_feed_message_is_the_sse_data_json(client: TestClient, db: Session) -> None:
    store = make_store(db)
    headers = auth_headers(db, make_store_user(db, store=store))
    event_id = add_event(db, store=store)
    (message,) = feed(client, headers, after=event_id - 1)["events"]
    assert set(message) == {
        "type",
        "event_id",
        "order_id",
        "store_id",
        "courier_id",
        "status",
        "occurred_at",
        "pickup_address",
        "boxes_count",
        "created_at",
        "order",
    }
    assert message["type"] == "order.created"
    assert message["status"] == "new"
    assert message["courier_id"] is None
    assert message["order"]["store_name"] == store.name


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"limit": -1}, {"after": -1}, {"after": 2**63}]
)
def test_limit_outside_1_to_500_or_a_bad_cursor_is_422(
    client: TestClient, db: Session, params: dict[str, int]
) -> None:
    headers = auth_headers(db, make_user(db, role=Role.ADMIN))
    response = client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 422


def test_a_store_user_sees_only_their_stores_events(client: TestClient, db: Session) -> None:
    mine, theirs = make_store(db), make_store(db)
    headers = auth_headers(db, make_store_user(db, store=mine))
    start = add_event(db, store=theirs) - 1
    own = add_event(db, store=mine)
    add_event(db, store=theirs)
    assert [e["event_id"] for e in feed(client, headers, after=start)["events"]] == [own]


def test_a_courier_sees_the_pool_without_details_and_own_orders_with_them(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    courier, other = make_user(db), make_user(db)
    headers = auth_headers(db, courier)
    pool = add_event(db, store=store)
    add_event(db, store=store, courier=other, status="assigned", type=EventType.ASSIGNED)
    mine = add_event(db, store=store, courier=courier, status="assigned", type=EventType.ASSIGNED)
    events = feed(client, headers, after=pool - 1)["events"]
    assert [e["event_id"] for e in events] == [pool, mine]
    assert "order" not in events[0]
    assert events[1]["order"]["recipient_first_name"] == "Noa"


def test_in_assign_mode_a_courier_sees_no_pool(
    client: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.ASSIGN)
    store = make_store(db)
    courier = make_user(db)
    headers = auth_headers(db, courier)
    pool = add_event(db, store=store)
    assert feed(client, headers, after=pool - 1)["events"] == []


def test_a_young_gap_in_the_ids_holds_the_feed_back_until_it_is_old(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    headers = auth_headers(db, make_user(db, role=Role.ADMIN))
    before = add_event(db, store=store)
    # An event whose lower neighbour's id is still owned by an open transaction (or rolled back).
    template = db.get(OrderEvent, before)
    assert template is not None
    db.add(
        OrderEvent(
            id=before + 2,
            order_id=template.order_id,
            type=EventType.UPDATED,
            store_id=store.id,
            to_status="new",
            created_at=utcnow(),
        )
    )
    db.commit()
    held = feed(client, headers, after=before - 1)
    assert [e["event_id"] for e in held["events"]] == [before]
    assert held["last_event_id"] == before
    db.execute(
        update(OrderEvent)
        .where(OrderEvent.id == before + 2)
        .values(created_at=utcnow() - timedelta(seconds=60))
    )
    db.commit()
    released = feed(client, headers, after=before)
    assert [e["event_id"] for e in released["events"]] == [before + 2]


def test_a_courier_feed_reads_whole_orders_only_for_the_events_shown_in_full(
    client: TestClient, db: Session, statements: list[str]
) -> None:
    """A courier's page is mostly the pool: those orders are read as their top-level keys only,
    and only the courier's own orders whole (reading every order whole made the page 2.4x as
    costly, docs/performance.md "The events feed")."""
    store = make_store(db)
    courier = make_user(db)
    headers = auth_headers(db, courier)
    first = add_event(db, store=store)
    for _ in range(4):
        add_event(db, store=store)
    feed(client, headers, after=first - 1)  # warm: the principal, the deadline read

    def whole_order_reads() -> list[str]:
        return [s for s in statements if "orders.recipient_first_name" in s]

    statements.clear()
    pool = feed(client, headers, after=first - 1)["events"]
    assert len(pool) == 5
    assert all("order" not in m and m["boxes_count"] == 1 and m["created_at"] for m in pool)
    assert whole_order_reads() == []
    pool_statements = len(statements)

    mine = add_event(db, store=store, courier=courier, status="assigned", type=EventType.ASSIGNED)
    for _ in range(5):
        add_event(db, store=store)
    feed(client, headers, after=first - 1)
    statements.clear()
    page = feed(client, headers, after=first - 1)["events"]
    assert len(page) == 11
    (own,) = [m for m in page if "order" in m]
    assert own["event_id"] == mine
    assert own["order"]["recipient_first_name"] == "Noa"
    assert len(whole_order_reads()) == 1
    # One more statement for the whole order, whatever the number of events.
    assert len(statements) == pool_statements + 1
