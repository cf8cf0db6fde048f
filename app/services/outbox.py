"""Writes push jobs for an event, in the event's own transaction (the transactional outbox).

Workers hear of new jobs when (and only if) the transaction commits (app/services/signals.py).
Jobs are always written pending: whether APNs is configured is the worker's decision, since a
separate `zariz worker` may hold the key that this API process lacks.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Device, OrderEvent, PushJob, PushStatus
from app.services import signals
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
    payload = payload_for(event)
    session.add_all(
        PushJob(
            event_id=event.id,
            device_id=device_id,
            payload=payload,
            status=PushStatus.PENDING,
            next_attempt_at=now,
        )
        for device_id in devices
    )
    signals.notify(session, signals.PUSH)
    return len(devices)
