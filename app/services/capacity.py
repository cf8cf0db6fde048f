"""A courier's load (boxes in accepted and picked-up orders) against their capacity."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import CapacityExceeded, CourierOffDuty, NotFound
from app.db.models import LOAD_STATUSES, Order, User


def load_of(session: Session, courier_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Order.boxes_count), 0)).where(
            Order.courier_id == courier_id,
            Order.status.in_(LOAD_STATUSES),
            Order.deleted_at.is_(None),
        )
    )
    return int(total or 0)


def lock_and_check_capacity(
    session: Session, *, courier_id: int, extra_boxes: int, taking: bool = True
) -> None:
    """Raises 409 if taking extra_boxes would overload the courier, or if they are off duty and
    this is a take (not an edit growing an order they already hold).

    The courier's row is locked first (SQLite already holds its one write lock) so two
    concurrent takes by one courier are serialised and cannot both pass. FOR NO KEY UPDATE, not
    FOR UPDATE: it still excludes every other take, but not the KEY SHARE lock a foreign-key
    insert takes on the same row (the request's Idempotency-Key row references the courier), so
    two keyed takes cannot deadlock, each holding KEY SHARE and wanting the other's to go.
    """
    row = session.execute(
        select(User.capacity_boxes, User.on_duty)
        .where(User.id == courier_id)
        .with_for_update(key_share=True)
    ).first()
    if row is None:
        raise NotFound("Courier not found")
    capacity, on_duty = row
    # Read under the lock: a duty change commits before or after this take, never in between.
    if taking and not on_duty:
        raise CourierOffDuty("The courier is off duty; going on duty comes first")
    load = load_of(session, courier_id)
    if load + extra_boxes > capacity:
        raise CapacityExceeded(
            f"Taking {extra_boxes} more boxes would exceed capacity: {load} of {capacity} in use"
        )
