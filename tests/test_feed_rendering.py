"""The pull feed and the SSE messages, rendered from plain rows, are byte for byte what the
ORM-and-validation rendering of 54b9f65 wrote (tests/feed_reference.py keeps that code).

The data varies what the wire forms depend on: viewers (admin, store owners, couriers with
and without orders), pool events and own orders, deleted orders, time windows and late
orders, failure reasons, proof ids, device times, times with and without microseconds,
missing actor roles and statuses, RTL and escaped text; over several cursors and limits.
"""

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import ActorRole, EventType, Order, OrderEvent, OrderStatus, Role
from app.realtime import feed, reads
from app.realtime.feed import settled_horizon
from app.realtime.hub import Frame
from app.schemas.events import EventMessage
from app.services.visibility import Viewer
from tests import feed_reference as old
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user

ADDRESSES = [
    "Herzl 1, Tel Aviv",
    "רחוב הרצל 1, תל אביב",
    'Quote " back\\slash\nnew line\ttab \x01 \x7f \u2028 emoji 📦',
    None,
    "",
]
EVENT_DATA: list[dict[str, Any] | None] = [
    None,
    {},
    {"proof_ids": [3, 4], "kind": "photo", "stage": "delivery"},
    {"reason_code": "no_answer", "failure_reason_code": "no_answer"},
    {"late": True, "minutes_late": 17},
    {"pickup_late": True, "minutes_late": 0},
    {"late": False, "pickup_late": None, "reason_code": "released", "accepted_at": "x"},
    {"proof_ids": [], "minutes_late": None},
]


def _world(db: Session, rng: random.Random) -> dict[str, Any]:
    stores = [make_store(db, name="מאפיית השכונה"), make_store(db), make_store(db)]
    couriers = [make_user(db, name="יוסי כהן"), make_user(db), make_user(db)]
    owner = make_store_user(db, store=stores[0])
    admin = make_user(db, role=Role.ADMIN)
    now = utcnow()
    orders: list[Order] = []
    for i in range(36):
        store = stores[i % 3]
        courier = rng.choice([None, None, couriers[0], couriers[1]])
        status = "new" if courier is None else rng.choice(["assigned", "picked_up", "delivered"])
        order = make_order(db, store=store, courier=courier, status=status, boxes_count=1 + i % 4)
        order.pickup_address = rng.choice(ADDRESSES)
        order.recipient_first_name = rng.choice(["Noa", "נועה", 'Ça va "x"'])
        order.notes = rng.choice([None, "ring twice\nthen wait", "קומה 3 📦"])
        if i % 4 == 0:
            order.deliver_before = now - timedelta(minutes=30)  # late unless delivered
            order.pickup_before = now + timedelta(hours=1, microseconds=0)
            order.deliver_after = (now - timedelta(hours=2)).replace(microsecond=0)
        if i % 5 == 0:
            order.status = OrderStatus.FAILED
            order.failure_reason = "Nobody home — לא ענו"
            order.failure_reason_code = "no_answer"
            order.failed_at = now
        if status == "delivered":
            order.delivered_at = now - timedelta(minutes=i)
        if i % 7 == 3:
            order.deleted_at = now
        orders.append(order)
    db.commit()
    for n in range(140):
        order = rng.choice(orders)
        created = now - timedelta(seconds=1000 - n, microseconds=rng.choice([0, 1, 123456]))
        event = OrderEvent(
            order_id=order.id,
            type=rng.choice(list(EventType)),
            from_status=rng.choice([None, "new"]),
            to_status=rng.choice([order.status, None]),
            actor_role=rng.choice([None, *ActorRole]),
            courier_id=order.courier_id,
            prev_courier_id=rng.choice([None, couriers[0].id, couriers[2].id]),
            store_id=order.store_id,
            data=rng.choice(EVENT_DATA),
            occurred_at=rng.choice(
                [None, created - timedelta(minutes=3), created.replace(microsecond=0)]
            ),
            created_at=created,
            pool_change=order.courier_id is None or rng.random() < 0.3,
        )
        db.add(event)
    db.commit()
    viewers = [
        (admin, Viewer(user_id=admin.id, role=Role.ADMIN)),
        (owner, Viewer(user_id=owner.id, role=Role.STORE, store_ids=(stores[0].id,))),
        *[(c, Viewer(user_id=c.id, role=Role.COURIER)) for c in couriers],
    ]
    return {"viewers": viewers, "stores": stores}


@pytest.fixture
def varied(db: Session) -> dict[str, Any]:
    return _world(db, random.Random(12))


def _pages(db: Session) -> list[tuple[int, int, int | None]]:
    ids = list(db.scalars(select(OrderEvent.id).order_by(OrderEvent.id)))
    first, middle, last = ids[0] - 1, ids[len(ids) // 2], ids[-1]
    return [
        (0, 500, None),
        (first, 1, None),
        (first, 7, None),
        (middle, 100, None),
        (middle, 13, ids[-20]),
        (last - 3, 100, None),
        (last, 100, None),
    ]


def test_the_feed_json_is_byte_for_byte_the_validated_rendering(
    db: Session, varied: dict[str, Any]
) -> None:
    compared = 0
    for _user, viewer in varied["viewers"]:
        for after, limit, until in _pages(db):
            events = feed.events_after(db, viewer=viewer, after=after, limit=limit, until=until)
            new = feed.feed_json(
                feed.messages(db, viewer=viewer, events=events),
                last_event_id=events[-1].id if events else after,
            )
            expected = old.feed_json(db, viewer=viewer, after=after, limit=limit, until=until)
            assert new == expected, (viewer, after, limit, until)
            compared += len(events)
    assert compared > 400


def test_the_sse_messages_are_byte_for_byte_the_old_rendering(
    db: Session, varied: dict[str, Any]
) -> None:
    compared = 0
    for _user, viewer in varied["viewers"]:
        for after, limit, until in _pages(db):
            replay = reads.replay_page(
                db, viewer=viewer, after=after, until=until or 2**62, limit=limit
            )
            new = [Frame.of(m).data for m in replay]
            expected = old.sse_data(db, viewer=viewer, after=after, limit=limit, until=until)
            assert new == expected, (viewer, after, limit, until)
            compared += len(new)
    assert compared > 400


def test_the_hub_frames_are_byte_for_byte_the_old_rendering(
    db: Session, varied: dict[str, Any]
) -> None:
    """The hub renders every event in full once and strips the order for the basic frame."""
    rows = reads.events_since(db, after=0, also_ids=(), limit=1000)
    orm = list(db.scalars(select(OrderEvent).order_by(OrderEvent.id)))
    expected = old.messages(db, viewer=reads._ALL_DETAILS, events=orm)
    for new in (
        reads.detailed_messages(db, events=rows),
        reads.detailed_messages(db, events=orm),  # ORM events are accepted too
    ):
        assert [Frame.of(m).data for m in new] == [Frame.of(m).data for m in expected]
    basic = [{k: v for k, v in m.items() if k != "order"} for m in expected]
    assert [
        Frame.of({k: v for k, v in m.items() if k != "order"}).data
        for m in reads.detailed_messages(db, events=rows)
    ] == [Frame.of(m).data for m in basic]
    assert any("order" in m for m in expected)
    assert any("order" not in m for m in expected)
    assert any("+00:00" in json.dumps(m) for m in expected)


def test_the_route_answers_the_old_bytes(
    client: TestClient, db: Session, settings: Settings, varied: dict[str, Any]
) -> None:
    for user, viewer in varied["viewers"]:
        headers = auth_headers(db, user)
        for after, limit, _until in _pages(db):
            until = settled_horizon(db, grace=settings.sse_gap_grace_seconds)
            response = client.get(
                "/v1/events", params={"after": after, "limit": limit}, headers=headers
            )
            assert response.status_code == 200
            expected = old.feed_json(db, viewer=viewer, after=after, limit=limit, until=until)
            assert response.content == expected, (viewer, after, limit)


def test_a_changed_rendering_is_caught(db: Session, varied: dict[str, Any]) -> None:
    """The comparison can fail: the SSE time format on the feed is not the feed's bytes."""
    viewer = varied["viewers"][0][1]
    events = feed.events_after(db, viewer=viewer, after=0, limit=50)
    sse_times = [feed.sse_message(m) for m in feed.messages(db, viewer=viewer, events=events)]
    wrong = feed.feed_json(sse_times, last_event_id=events[-1].id)
    assert wrong != old.feed_json(db, viewer=viewer, after=0, limit=50, until=None)


def test_the_feed_writes_its_keys_in_the_order_of_event_messages_fields() -> None:
    """render() builds each message key by key, in EventMessage's field order: the order the
    documented schema has and the clients see. A field added to one and not the other fails
    here (this was a module-level assert in feed.py, which `python -O` drops)."""
    assert tuple(EventMessage.model_fields) == (
        "type",
        "event_id",
        "order_id",
        "store_id",
        "courier_id",
        "status",
        "occurred_at",
        "actor_role",
        *feed.TOP_LEVEL_ORDER_KEYS,
        *feed.EVENT_DATA_KEYS,
        "device_occurred_at",
        "order",
    )
