"""After-commit signals: NOTIFY for every process on Postgres, and this process's subscribers.

A service calls notify() inside its transaction. NOTIFY is transactional, so other processes
hear of it exactly when (and only if) the transaction commits; this process's own subscribers are
called after the commit too (on both databases), without waiting for the NOTIFY round trip.
"""

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.db.session import is_postgres

# Channels: a committed order event (the SSE hubs listen), a committed pending push job (workers),
# a committed change to users, stores, memberships or sessions (every API process's principal
# cache, app/services/principal_cache.py).
EVENTS = "zariz_events"
PUSH = "zariz_push"
PRINCIPALS = "zariz_principals"

Subscriber = Callable[[list[str]], None]

_PENDING = "zariz_pending_signals"
_lock = threading.Lock()
_subscribers: dict[str, list[Subscriber]] = {}


def notify(session: Session, channel: str, payload: str = "") -> None:
    if is_postgres(session):
        session.execute(select(func.pg_notify(channel, payload)))
    session.info.setdefault(_PENDING, {}).setdefault(channel, []).append(payload)


def subscribe(channel: str, subscriber: Subscriber) -> None:
    with _lock:
        _subscribers.setdefault(channel, []).append(subscriber)


def unsubscribe(channel: str, subscriber: Subscriber) -> None:
    with _lock:
        if subscriber in _subscribers.get(channel, []):
            _subscribers[channel].remove(subscriber)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    pending: dict[str, list[str]] | None = session.info.pop(_PENDING, None)
    for channel, payloads in (pending or {}).items():
        with _lock:
            subscribers = list(_subscribers.get(channel, []))
        for subscriber in subscribers:
            subscriber(payloads)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING, None)
