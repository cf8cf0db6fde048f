"""Writes push jobs for an event, in the event's own transaction (the transactional outbox)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.base import utcnow
from app.db.models import Device, OrderEvent, PushJob, PushStatus
from app.services.visibility import audience_query


def payload_for(event: OrderEvent) -> dict[str, Any]:
    # A background push: the app wakes, pulls /v1/events and refreshes; no recipient data rides
    # through Apple.
    return {"aps": {"content-available": 1}, "type": event.type, "order_id": event.order_id}


def enqueue_for_event(session: Session, event: OrderEvent) -> int:
    """Adds one job per enabled device of every user who sees the event except its actor."""
    # One query: the audience as a subquery (it can be every courier), not a bound id list.
    devices = session.scalars(
        select(Device.id).where(
            Device.user_id.in_(audience_query(event)), Device.disabled_at.is_(None)
        )
    ).all()
    if not devices:
        return 0
    now = utcnow()
    status = PushStatus.PENDING if get_settings().apns_configured else PushStatus.SKIPPED
    payload = payload_for(event)
    session.add_all(
        PushJob(
            event_id=event.id,
            device_id=device_id,
            payload=payload,
            status=status,
            next_attempt_at=now,
            last_error=None if status == PushStatus.PENDING else "APNs is not configured",
        )
        for device_id in devices
    )
    return len(devices)
