"""The pull feed of order events and the rendering of events as messages (pull and SSE alike).

One renderer (`render`) builds each message from an event row and its order; two encoders
write it: the pull feed's (`feed_json`, as the `EventFeed` model would dump it: UTC times with
`Z`) and the SSE `data:` line's (`sse_message`, times of the event with `+00:00`). Both wire
forms are fixed by the clients; tests/test_feed_rendering.py holds them to the bytes they had.
"""

import functools
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import Integer, Select, String, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.base import utcnow
from app.db.models import Order, OrderEvent, Role
from app.schemas.events import OrderTop
from app.schemas.orders import OrderRead
from app.services.auth import Principal
from app.services.order_views import with_names
from app.services.visibility import (
    Viewer,
    event_scope,
    scope_params,
    scope_shape,
    sees_details,
)


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(user_id=principal.user.id, role=principal.role, store_ids=principal.store_ids)


class EventRow(NamedTuple):
    """An event as its message needs it, and the top-level keys of its order (None when the
    order row is missing). Plain columns: no ORM object is hydrated for a page of events."""

    id: int
    type: str
    order_id: int
    store_id: int
    courier_id: int | None
    prev_courier_id: int | None
    pool_change: bool
    to_status: str | None
    created_at: datetime
    actor_role: str | None
    occurred_at: datetime | None
    data: dict[str, Any] | None
    pickup_address: str | None = None
    boxes_count: int | None = None
    order_created_at: datetime | None = None

    @classmethod
    def of(cls, event: OrderEvent) -> "EventRow":
        """An ORM event without its order's keys: only for viewers who see every order in full
        (the orders are read whole then, and their keys taken from there)."""
        return cls(*(getattr(event, name) for name in _EVENT_FIELDS))


_EVENT_FIELDS = EventRow._fields[:12]
# Read as the strings they are stored as: the messages write the value either way, and building
# three enum members per event was a tenth of a page's CPU.
_AS_STORED = {"type", "to_status", "actor_role"}


def _event_column(name: str) -> Any:
    column = getattr(OrderEvent, name)
    return type_coerce(column, String()).label(name) if name in _AS_STORED else column


_EVENT_COLUMNS = (
    *(_event_column(name) for name in _EVENT_FIELDS),
    Order.pickup_address,
    Order.boxes_count,
    Order.created_at.label("order_created_at"),
)


def event_rows(*extra: Any) -> Select[Any]:
    """SELECT of EventRow columns (then `extra`): the event's and, in the same statement, its
    order's keys."""
    return select(*_EVENT_COLUMNS, *extra).outerjoin(Order, Order.id == OrderEvent.order_id)


def events_after(
    session: Session, *, viewer: Viewer, after: int, limit: int, until: int | None = None
) -> list[EventRow]:
    query = event_rows().where(OrderEvent.id > after, event_scope(viewer))
    if until is not None:
        query = query.where(OrderEvent.id <= until)
    # Core rows through the session's connection: no ORM execution context for plain columns.
    rows = session.connection().execute(query.order_by(OrderEvent.id).limit(limit))
    return [EventRow._make(row) for row in rows]


# How far back the feed looks for a gap in the ids; at 100x the design load this spans far more
# than the grace period.
HORIZON_PROBE = 32
HORIZON_WINDOW = 500


# The newest event's time, as an extra column of the page's statement.
_NEWEST = (
    select(OrderEvent.created_at)
    .order_by(OrderEvent.id.desc())
    .limit(1)
    .correlate(None)  # the newest of the table, not of the page's row
    .scalar_subquery()
    .label("newest_at")
)


def settled_horizon(session: Session, *, grace: float) -> int | None:
    """The highest id the pull feed may hand out now, or None for "no limit".

    An id missing between two committed events may belong to a transaction that has not committed
    yet (ids are allocated before commit). A client that took the later event as its cursor would
    skip the earlier one for ever, so the feed stops below a gap until it is `grace` seconds old;
    older gaps are rolled-back ids. The SSE hub applies the same rule with more state
    (app/realtime/sequencer.py).
    """
    cutoff = utcnow() - timedelta(seconds=grace)
    # Usually the newest event is older than the grace period, and then no gap can matter: one
    # row answers. Otherwise read a short tail, and the whole window only when even the short
    # tail is that young.
    newest = session.scalar(select(OrderEvent.created_at).order_by(OrderEvent.id.desc()).limit(1))
    if newest is None or newest < cutoff:
        return None
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


@functools.cache
def _page_statement(shape: tuple[Role, bool, bool]) -> Select[Any]:
    """The feed page's SELECT for every viewer of this scope shape, built once: the cursor, the
    limit and the viewer's ids are its parameters. Building the statement per request (and
    adapting the cached compilation's result columns to the new object) cost a quarter of the
    page's CPU."""
    role, has_stores, _open_mode = shape  # event_scope reads the dispatch mode itself
    like = Viewer(user_id=0, role=role, store_ids=(0,) if has_stores else ())
    return (
        event_rows(_NEWEST)
        .where(OrderEvent.id > bindparam("after"), event_scope(like, bound=True))
        .order_by(OrderEvent.id)
        .limit(bindparam("limit", type_=Integer))
    )


def feed_page(
    session: Session, *, principal: Principal, after: int, limit: int
) -> tuple[bytes, bool]:
    """The page's JSON (an `EventFeed`), and whether it is settled: False when a young gap in
    the ids held it back, so that the same request may answer more once the gap is older, with
    nothing committed."""
    viewer = viewer_of(principal)
    grace = get_settings().sse_gap_grace_seconds
    # The newest event's time comes with the page: when it is older than the grace period no
    # gap can hold the page back, and the settled-horizon check costs no statement of its own.
    params = {"after": after, "limit": limit, **scope_params(viewer)}
    rows = session.connection().execute(_page_statement(scope_shape(viewer)), params).all()
    horizon = None
    if not rows or rows[0].newest_at >= utcnow() - timedelta(seconds=grace):
        horizon = settled_horizon(session, grace=grace)
    # Below the horizon is a prefix of the page (it is in id order): the same events as
    # reading up to the horizon.
    events = [EventRow._make(row[:-1]) for row in rows if horizon is None or row.id <= horizon]
    rendered = messages(session, viewer=viewer, events=events)
    # End the read in this worker thread: the connection goes back to the pool before the
    # response is serialized, and closing the session needs no thread of its own.
    session.commit()
    return feed_json(rendered, last_event_id=events[-1].id if events else after), horizon is None


# Keys of the order copied to the top level of every message, where the web admin reads them.
# None of them is personal, so a courier watching the pool gets them too.
TOP_LEVEL_ORDER_KEYS = tuple(OrderTop.model_fields)
# Keys of an event's data copied into its message: ids and codes, nothing personal.
EVENT_DATA_KEYS = ("proof_ids", "reason_code", "late", "pickup_late", "minutes_late")

# An order's TOP_LEVEL_ORDER_KEYS values, in that order.
Top = tuple[str | None, int, datetime]


def _whole_orders(
    session: Session, *, order_ids: set[int]
) -> tuple[dict[int, Top], dict[int, OrderRead]]:
    """The top-level keys of these orders, and the OrderRead of those not deleted: the orders a
    message shows in full, read whole with their names as the list does.

    The keys come from the same row as the body, so the two never disagree; the orders a
    viewer may not see in full are not read here at all (their keys came with the events).
    """
    tops: dict[int, Top] = {}
    bodies: dict[int, OrderRead] = {}
    if order_ids:
        rows = session.execute(with_names(select(Order).where(Order.id.in_(order_ids)))).all()
        for row in rows:
            tops[row.id] = (row.pickup_address, row.boxes_count, row.created_at)
            if row.deleted_at is None:
                bodies[row.id] = OrderRead.model_validate(row._mapping)
    return tops, bodies


def messages(
    session: Session, *, viewer: Viewer, events: Sequence[EventRow]
) -> list[dict[str, Any]]:
    """Each event's message: the order's current state where the viewer may see it.

    `store_id`, `courier_id` and `status` are the event's; the keys of TOP_LEVEL_ORDER_KEYS are
    the order's now. A soft-deleted order ships no `order` body in any of its events, replayed
    ones included: its recipient is nobody's business any more.
    """
    detailed = [sees_details(viewer, event) for event in events]
    tops, bodies = _whole_orders(
        session,
        order_ids={e.order_id for e, full in zip(events, detailed, strict=True) if full},
    )
    out = []
    for event, full in zip(events, detailed, strict=True):
        top = tops.get(event.order_id) if full else None
        if top is None and event.boxes_count is not None and event.order_created_at is not None:
            top = (event.pickup_address, event.boxes_count, event.order_created_at)
        out.append(render(event, top, bodies.get(event.order_id) if full else None))
    return out


def render(event: EventRow, top: Top | None, body: OrderRead | None) -> dict[str, Any]:
    """One event's message, in the pull feed's key order (EventMessage's fields), with
    datetimes as datetimes and the order as its OrderRead: the encoders below write them."""
    message: dict[str, Any] = {
        "type": event.type,
        "event_id": event.id,
        "order_id": event.order_id,
        "store_id": event.store_id,
        "courier_id": event.courier_id,
        "status": event.to_status,
        # The server's time of the event, as DESIGN §6 and the clients have it.
        "occurred_at": event.created_at,
    }
    if event.actor_role is not None:
        # Who caused it by role only (`system` for the worker's auto-release), never by name.
        message["actor_role"] = event.actor_role
    if top is not None:
        message["pickup_address"], message["boxes_count"], message["created_at"] = top
    data = event.data
    if data:
        for key in EVENT_DATA_KEYS:
            value = data.get(key)
            if value is not None:
                message[key] = value
    if event.occurred_at is not None:
        # When it happened on the courier's device (an offline action synced later).
        message["device_occurred_at"] = event.occurred_at
    if top is not None and body is not None:
        message["order"] = body
    return message


def feed_json(rendered: list[dict[str, Any]], *, last_event_id: int) -> bytes:
    """The JSON of `EventFeed(events=rendered, last_event_id=...)` dumped with
    exclude_unset, written by the same serializer without validating what we built ourselves
    (validating and dumping a page cost more CPU than reading it)."""
    return to_json({"events": rendered, "last_event_id": last_event_id})


# The SSE message's key order, older than the feed's and kept: clients parse by key, but the
# bytes are what they were.
_SSE_KEYS = (
    "type",
    "event_id",
    "order_id",
    "store_id",
    "courier_id",
    "status",
    "occurred_at",
    "actor_role",
    "device_occurred_at",
    *EVENT_DATA_KEYS,
    *TOP_LEVEL_ORDER_KEYS,
    "order",
)


def sse_message(message: dict[str, Any]) -> dict[str, Any]:
    """The SSE `data:` JSON of a rendered message (for json.dumps): the event's own times as
    isoformat (`+00:00`), the order's as the API writes them (`Z`)."""
    out = {key: message[key] for key in _SSE_KEYS if key in message}
    out["occurred_at"] = out["occurred_at"].isoformat()
    if "device_occurred_at" in out:
        out["device_occurred_at"] = out["device_occurred_at"].isoformat()
    if "created_at" in out:
        out["created_at"] = to_jsonable_python(out["created_at"])
    if "order" in out:
        out["order"] = out["order"].model_dump(mode="json")
    return out
