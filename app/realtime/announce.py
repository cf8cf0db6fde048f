"""Tells every API process that an event was committed: NOTIFY on Postgres, a local bus on SQLite.

NOTIFY is transactional, so listeners hear of the event exactly when (and only if) it commits.
"""

from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.realtime import local_bus

CHANNEL = "zariz_events"
_PENDING = "zariz_pending_event_ids"


def announce(session: Session, event_id: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, str(event_id))))
    # Also remembered for this process's own listeners, published after commit (both databases):
    # a process hears its own events without waiting for the NOTIFY round trip.
    session.info.setdefault(_PENDING, []).append(event_id)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    ids = session.info.pop(_PENDING, None)
    if ids:
        local_bus.publish(list(ids))


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING, None)
