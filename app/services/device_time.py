"""A courier's device time on an action (offline, synced later): bounded, and window breaches."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.db.base import utcnow
from app.db.models import EventType, Order, OrderEvent, OrderStatus

# Events that are not steps of the order's life: an edit or a proof upload recorded while the
# courier was offline must not make their earlier delivery look impossible.
NOT_STEPS = (EventType.UPDATED, EventType.PROOF_ADDED, EventType.DELETED)


def checked_occurred_at(
    session: Session, *, order_id: int, occurred_at: datetime | None
) -> datetime | None:
    """The device time if it is believable, else a 422 naming occurred_at.

    Not later than now plus OCCURRED_AT_MAX_SKEW_SECONDS, not older than
    OCCURRED_AT_MAX_AGE_HOURS, and not before the order's previous step (its device time where it
    had one): a courier cannot date a delivery before the pickup, or into last week.
    """
    if occurred_at is None:
        return None
    settings = get_settings()
    now = utcnow()
    if occurred_at > now + timedelta(seconds=settings.occurred_at_max_skew_seconds):
        raise InvalidInput("occurred_at is in the future")
    if occurred_at < now - timedelta(hours=settings.occurred_at_max_age_hours):
        raise InvalidInput(
            f"occurred_at is more than {settings.occurred_at_max_age_hours} hours ago"
        )
    previous = session.scalar(
        select(func.coalesce(OrderEvent.occurred_at, OrderEvent.created_at))
        .where(OrderEvent.order_id == order_id, OrderEvent.type.not_in(NOT_STEPS))
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )
    if previous is not None and occurred_at < previous:
        raise InvalidInput("occurred_at is before the order's previous step")
    return occurred_at


def window_breaches(order: Order, *, status: OrderStatus, at: datetime) -> dict[str, Any]:
    """What the event records of the windows it broke: late delivery (or failure), late pickup."""
    if status == OrderStatus.PICKED_UP:
        key, deadline = "pickup_late", order.pickup_before
    elif status in (OrderStatus.DELIVERED, OrderStatus.FAILED):
        key, deadline = "late", order.deliver_before
    else:
        return {}
    if deadline is None or at <= deadline:
        return {}
    return {key: True, "minutes_late": int((at - deadline).total_seconds() // 60)}
