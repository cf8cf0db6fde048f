"""Writes push jobs for an event, in the event's own transaction (the transactional outbox).

Workers hear of new jobs when (and only if) the transaction commits: NOTIFY on Postgres (itself
transactional) reaches every worker process, and an after-commit hook wakes this process's own.
"""

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.base import utcnow
from app.db.models import Device, OrderEvent, PushJob, PushStatus
from app.services.visibility import audience_query

log = logging.getLogger("zariz.push")

CHANNEL = "zariz_push"
_WAKE = "zariz_push_wake"

_lock = threading.Lock()
_wake_listeners: list[Callable[[], None]] = []
_warned_unconfigured = False


def add_wake_listener(listener: Callable[[], None]) -> None:
    with _lock:
        _wake_listeners.append(listener)


def remove_wake_listener(listener: Callable[[], None]) -> None:
    with _lock:
        if listener in _wake_listeners:
            _wake_listeners.remove(listener)


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
    if status == PushStatus.SKIPPED:
        _log_unconfigured(event.id, len(devices))
    else:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_notify(CHANNEL, "")))
        session.info[_WAKE] = True
    return len(devices)


def _log_unconfigured(event_id: int, count: int) -> None:
    global _warned_unconfigured
    if not _warned_unconfigured:
        _warned_unconfigured = True
        log.warning("APNs is not configured: push jobs are written as skipped")
    log.debug("%d push jobs skipped: APNs is not configured", count, extra={"event_id": event_id})


@sa_event.listens_for(Session, "after_commit")
def _wake_workers(session: Session) -> None:
    if session.info.pop(_WAKE, False):
        with _lock:
            listeners = list(_wake_listeners)
        for listener in listeners:
            listener()


@sa_event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session, *_args: Any) -> None:
    session.info.pop(_WAKE, None)
