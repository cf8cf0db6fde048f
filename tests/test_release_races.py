"""The worker's auto-release racing the courier's pickup: real threads, real commits, one winner."""

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.core.errors import ZarizError
from app.db.base import utcnow
from app.db.models import Order, OrderEvent, OrderStatus, User
from app.services.auth import Principal
from app.services.order_lifecycle import release_order, set_status
from tests.builders import make_order, make_store, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = 40
# The releaser starts up to this many 100 µs steps later, varied by round, so that each side
# sometimes lands first (the assertions hold whatever the order; this only widens the coverage).
STAGGER_STEPS = 8


def pick_up_in_thread(engine: Engine, *, courier_id: int, order_id: int) -> int:
    """The courier's pickup through the same service the route calls: 200, or the 4xx it raised."""
    with Session(bind=engine, expire_on_commit=False) as session:
        courier = session.get(User, courier_id)
        assert courier is not None
        principal = Principal(user=courier, session_id=0, family_id=0, store_ids=())
        try:
            set_status(
                session,
                order_id=order_id,
                status=OrderStatus.PICKED_UP,
                note=None,
                reason=None,
                actor=principal,
            )
        except ZarizError as exc:
            return exc.status
        return 200


def race_once(
    engine: Engine, *, courier_id: int, order_id: int, cutoff: datetime, delay: float
) -> tuple[int, bool]:
    """The pickup and the release on two threads released together: (pickup status, released)."""
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def pick_up() -> None:
        barrier.wait()
        results["pickup"] = pick_up_in_thread(engine, courier_id=courier_id, order_id=order_id)

    def release() -> None:
        with Session(bind=engine, expire_on_commit=False) as session:
            barrier.wait()
            time.sleep(delay)
            results["released"] = release_order(session, order_id=order_id, accepted_before=cutoff)

    threads = [threading.Thread(target=pick_up), threading.Thread(target=release)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    pickup, released = results["pickup"], results["released"]
    assert isinstance(pickup, int)
    assert isinstance(released, bool)
    return pickup, released


def test_pickup_racing_the_release_exactly_one_wins_and_the_trail_agrees(
    committed: Session, engine: Engine
) -> None:
    store = make_store(committed)
    courier = make_user(committed, capacity_boxes=200)
    outcomes = {"picked_up": 0, "released": 0}
    for round_no in range(ROUNDS):
        order = make_order(committed, store=store, status="accepted", courier=courier)
        order.accepted_at = utcnow() - timedelta(minutes=30)
        committed.commit()
        cutoff = utcnow() - timedelta(minutes=20)
        pickup, released = race_once(
            engine,
            courier_id=courier.id,
            order_id=order.id,
            cutoff=cutoff,
            delay=(round_no % STAGGER_STEPS) / 10_000,
        )
        # Exactly one wins: the pickup's 200 and the release exclude each other.
        assert (pickup == 200) != released, (pickup, released)
        if released:
            # The order left the courier first: their pickup finds it is no longer theirs.
            assert pickup == 404
        committed.expire_all()
        final = committed.get(Order, order.id)
        assert final is not None
        trail = committed.execute(
            select(OrderEvent.type, OrderEvent.from_status, OrderEvent.to_status)
            .where(OrderEvent.order_id == order.id)
            .order_by(OrderEvent.id)
        ).all()
        if released:
            outcomes["released"] += 1
            assert (final.status, final.courier_id) == ("new", None)
            assert [tuple(r) for r in trail] == [("order.released", "accepted", "new")]
        else:
            outcomes["picked_up"] += 1
            assert (final.status, final.courier_id) == ("picked_up", courier.id)
            assert [tuple(r) for r in trail] == [("order.status_changed", "accepted", "picked_up")]
        assert final.version == 2
    assert sum(outcomes.values()) == ROUNDS, outcomes
