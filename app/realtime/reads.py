"""Database reads of the SSE fan-out: new events for the hub, replay pages, re-checks of streams."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select, text
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import (
    OrderEvent,
    Role,
    Store,
    StoreMembership,
    StoreStatus,
    User,
    UserSession,
    UserStatus,
)
from app.db.session import is_postgres
from app.realtime.feed import EventRow, event_rows, events_after, messages, sse_message
from app.realtime.sequencer import Snapshot
from app.services.visibility import Viewer

# Renders every event with its order; each stream then drops what its viewer may not see.
_ALL_DETAILS = Viewer(user_id=0, role=Role.ADMIN)


def current_snapshot(session: Session) -> Snapshot | None:
    """Postgres' view of running transactions, for proving a missing event id was rolled back."""
    if not is_postgres(session):
        return None
    xmin, xmax = session.execute(
        text(
            "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text"
            " FROM pg_current_snapshot() AS s"
        )
    ).one()
    return Snapshot(xmin=int(xmin), xmax=int(xmax))


def newest_events(session: Session, *, limit: int) -> list[Row[int, datetime]]:
    """(id, created_at) of the newest events, newest first."""
    return list(
        session.execute(
            select(OrderEvent.id, OrderEvent.created_at).order_by(OrderEvent.id.desc()).limit(limit)
        ).all()
    )


def events_since(
    session: Session, *, after: int, also_ids: Collection[int], limit: int
) -> list[EventRow]:
    """Every event above the hub's mark, unscoped, plus the ids it is still waiting for."""
    condition = OrderEvent.id > after
    if also_ids:
        condition = or_(condition, OrderEvent.id.in_(sorted(also_ids)))
    rows = session.execute(event_rows().where(condition).order_by(OrderEvent.id).limit(limit))
    return [EventRow._make(row) for row in rows]


def detailed_messages(
    session: Session, *, events: Sequence[EventRow | OrderEvent]
) -> list[dict[str, Any]]:
    """The SSE `data:` JSON of each event with its order in full (where not deleted)."""
    rows = [e if isinstance(e, EventRow) else EventRow.of(e) for e in events]
    return [sse_message(m) for m in messages(session, viewer=_ALL_DETAILS, events=rows)]


def replay_page(
    session: Session, *, viewer: Viewer, after: int, until: int, limit: int
) -> list[dict[str, Any]]:
    """The SSE `data:` JSON of the viewer's events in (after, until], at most `limit`."""
    events = events_after(session, viewer=viewer, after=after, until=until, limit=limit)
    return [sse_message(m) for m in messages(session, viewer=viewer, events=events)]


@dataclass(frozen=True)
class Grant:
    """What a stream was opened with; it stays open only while all of it still holds."""

    session_id: int
    user_id: int
    role: str
    store_ids: tuple[int, ...]


def lapsed_grants(session: Session, *, grants: Collection[Grant]) -> set[Grant]:
    """The grants whose session ended, whose user is no longer active, or whose role or stores
    changed (a stream's scope is fixed when it opens; the client reconnects for the new one)."""
    if not grants:
        return set()
    rows = session.execute(
        select(UserSession.id, User.id, User.role)
        .join(User, User.id == UserSession.user_id)
        .where(
            UserSession.id.in_({g.session_id for g in grants}),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > utcnow(),  # the refresh lifetime bounds a stream too
            User.status == UserStatus.ACTIVE,
            User.deleted_at.is_(None),
        )
    ).all()
    valid = {session_id: (user_id, role) for session_id, user_id, role in rows}
    store_users = {g.user_id for g in grants if g.role == Role.STORE}
    stores: dict[int, list[int]] = {}
    if store_users:
        for user_id, store_id in session.execute(
            # Only active stores count, as in store_ids_of: suspending one ends its streams.
            select(StoreMembership.user_id, StoreMembership.store_id)
            .join(Store, Store.id == StoreMembership.store_id)
            .where(
                StoreMembership.user_id.in_(store_users),
                Store.status == StoreStatus.ACTIVE,
                Store.deleted_at.is_(None),
            )
        ):
            stores.setdefault(user_id, []).append(store_id)
    return {
        g
        for g in grants
        if valid.get(g.session_id) != (g.user_id, g.role)
        or (g.role == Role.STORE and tuple(sorted(stores.get(g.user_id, []))) != g.store_ids)
    }
