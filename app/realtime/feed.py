"""The pull feed of order events and the rendering of events as messages (pull and SSE alike)."""

import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.base import utcnow
from app.db.models import Order, OrderEvent
from app.schemas.events import EventFeed, EventMessage, OrderTop
from app.schemas.orders import OrderRead
from app.services.auth import Principal
from app.services.order_views import with_names
from app.services.visibility import Viewer, event_scope, sees_details


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(user_id=principal.user.id, role=principal.role, store_ids=principal.store_ids)


def events_after(
    session: Session, *, viewer: Viewer, after: int, limit: int, until: int | None = None
) -> list[OrderEvent]:
    query = select(OrderEvent).where(OrderEvent.id > after, event_scope(viewer))
    if until is not None:
        query = query.where(OrderEvent.id <= until)
    return list(session.scalars(query.order_by(OrderEvent.id).limit(limit)))


# How far back the feed looks for a gap in the ids; at 100x the design load this spans far more
# than the grace period.
HORIZON_PROBE = 32
HORIZON_WINDOW = 500


def settled_horizon(session: Session, *, grace: float) -> int | None:
    """The highest id the pull feed may hand out now, or None for "no limit".

    An id missing between two committed events may belong to a transaction that has not committed
    yet (ids are allocated before commit). A client that took the later event as its cursor would
    skip the earlier one for ever, so the feed stops below a gap until it is `grace` seconds old;
    older gaps are rolled-back ids. The SSE hub applies the same rule with more state
    (app/realtime/sequencer.py).
    """
    cutoff = utcnow() - timedelta(seconds=grace)
    # Only events younger than the grace period matter, and usually there are few: read a short
    # tail first, and the whole window only when even the short tail is that young.
    rows: Sequence[Any] = ()
    for window in (HORIZON_PROBE, HORIZON_WINDOW):
        rows = session.execute(
            select(OrderEvent.id, OrderEvent.created_at)
            .order_by(OrderEvent.id.desc())
            .limit(window)
        ).all()
        if len(rows) < window or rows[-1].created_at < cutoff:
            break
    horizon = None
    for newer, older in itertools.pairwise(rows):
        if newer.created_at < cutoff:
            break
        if newer.id - older.id > 1:
            horizon = older.id
    return horizon


def feed_page(
    session: Session, *, principal: Principal, after: int, limit: int
) -> tuple[EventFeed, bool]:
    """The page, and whether it is settled: False when a young gap in the ids held it back, so
    that the same request may answer more once the gap is older, with nothing committed."""
    viewer = viewer_of(principal)
    horizon = settled_horizon(session, grace=get_settings().sse_gap_grace_seconds)
    events = events_after(session, viewer=viewer, after=after, until=horizon, limit=limit)
    rendered = messages(session, viewer=viewer, events=events)
    # End the read in this worker thread: the connection goes back to the pool before the
    # response is serialized, and closing the session needs no thread of its own.
    session.commit()
    page = EventFeed(
        events=[EventMessage.model_validate(m) for m in rendered],
        last_event_id=events[-1].id if events else after,
    )
    return page, horizon is None


# Keys of the order copied to the top level of every message, where the web admin reads them.
# None of them is personal, so a courier watching the pool gets them too.
TOP_LEVEL_ORDER_KEYS = tuple(OrderTop.model_fields)
_TOPS = TypeAdapter(list[OrderTop])
# Keys of an event's data copied into its message: ids and codes, nothing personal.
EVENT_DATA_KEYS = ("proof_ids", "reason_code", "late", "pickup_late", "minutes_late")


def _orders_of(
    session: Session, *, order_ids: set[int], detailed_ids: set[int]
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """The top-level keys of every order, and the whole OrderRead (JSON) of the detailed ones
    that are not deleted.

    Only the orders a message shows in full are read whole, with their names; the others (a
    courier's feed is mostly the pool) only as the few columns of TOP_LEVEL_ORDER_KEYS: reading
    and validating every order whole made a courier's feed page cost 2.4x as much CPU.
    """
    tops: dict[int, dict[str, Any]] = {}
    bodies: dict[int, dict[str, Any]] = {}
    if detailed_ids:
        rows = session.execute(with_names(select(Order).where(Order.id.in_(detailed_ids)))).all()
        for row in rows:
            body = OrderRead.model_validate(row._mapping).model_dump(mode="json")
            tops[body["id"]] = {key: body[key] for key in TOP_LEVEL_ORDER_KEYS}
            if row.deleted_at is None:
                bodies[body["id"]] = body
    rest = order_ids - detailed_ids
    if rest:
        rows = session.execute(
            select(Order.id, *(getattr(Order, key) for key in TOP_LEVEL_ORDER_KEYS)).where(
                Order.id.in_(rest)
            )
        ).all()
        dumped = _TOPS.dump_python(_TOPS.validate_python(rows), mode="json")
        tops.update({row.id: top for row, top in zip(rows, dumped, strict=True)})
    return tops, bodies


def messages(
    session: Session, *, viewer: Viewer, events: Sequence[OrderEvent]
) -> list[dict[str, Any]]:
    """The SSE `data:` JSON of each event: the order's current state where the viewer may see it.

    `store_id`, `courier_id` and `status` are the event's; the keys of TOP_LEVEL_ORDER_KEYS are
    the order's now. A soft-deleted order ships no `order` body in any of its events, replayed
    ones included: its recipient is nobody's business any more.
    """
    detailed = [sees_details(viewer, event) for event in events]
    tops, bodies = _orders_of(
        session,
        order_ids={e.order_id for e in events},
        detailed_ids={e.order_id for e, full in zip(events, detailed, strict=True) if full},
    )
    out = []
    for event, full in zip(events, detailed, strict=True):
        message: dict[str, Any] = {
            "type": event.type,
            "event_id": event.id,
            "order_id": event.order_id,
            "store_id": event.store_id,
            "courier_id": event.courier_id,
            "status": event.to_status,
            # The server's time of the event, as DESIGN §6 and the clients have it.
            "occurred_at": event.created_at.isoformat(),
        }
        if event.actor_role is not None:
            # Who caused it by role only (`system` for the worker's auto-release), never by name.
            message["actor_role"] = event.actor_role
        if event.occurred_at is not None:
            # When it happened on the courier's device (an offline action synced later).
            message["device_occurred_at"] = event.occurred_at.isoformat()
        for key in EVENT_DATA_KEYS:
            if event.data and event.data.get(key) is not None:
                message[key] = event.data[key]
        top = tops.get(event.order_id)
        if top is not None:
            message.update(top)
            body = bodies.get(event.order_id) if full else None
            if body is not None:
                message["order"] = body
        out.append(message)
    return out
