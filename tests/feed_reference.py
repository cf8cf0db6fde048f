"""The feed and SSE rendering as they were before the feed was rendered from plain rows
(54b9f65, app/realtime/feed.py), kept only for test_feed_rendering to compare against."""

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Order, OrderEvent
from app.schemas.events import EventFeed, EventMessage, OrderTop
from app.schemas.orders import OrderRead
from app.services.order_views import with_names
from app.services.visibility import Viewer, event_scope, sees_details

TOP_LEVEL_ORDER_KEYS = tuple(OrderTop.model_fields)
_TOPS = TypeAdapter(list[OrderTop])
EVENT_DATA_KEYS = ("proof_ids", "reason_code", "late", "pickup_late", "minutes_late")


def events_after(
    session: Session, *, viewer: Viewer, after: int, limit: int, until: int | None = None
) -> list[OrderEvent]:
    query = select(OrderEvent).where(OrderEvent.id > after, event_scope(viewer))
    if until is not None:
        query = query.where(OrderEvent.id <= until)
    return list(session.scalars(query.order_by(OrderEvent.id).limit(limit)))


def _orders_of(
    session: Session, *, order_ids: set[int], detailed_ids: set[int]
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
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
            "occurred_at": event.created_at.isoformat(),
        }
        if event.actor_role is not None:
            message["actor_role"] = event.actor_role
        if event.occurred_at is not None:
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


def feed_json(
    session: Session, *, viewer: Viewer, after: int, limit: int, until: int | None
) -> bytes:
    """The body GET /v1/events answered for this page."""
    events = events_after(session, viewer=viewer, after=after, until=until, limit=limit)
    rendered = messages(session, viewer=viewer, events=events)
    page = EventFeed(
        events=[EventMessage.model_validate(m) for m in rendered],
        last_event_id=events[-1].id if events else after,
    )
    return page.model_dump_json(exclude_unset=True).encode()


def sse_data(
    session: Session, *, viewer: Viewer, after: int, limit: int, until: int | None
) -> list[bytes]:
    """The `data:` JSON of each replayed SSE message of this page (hub.encode)."""
    import json

    events = events_after(session, viewer=viewer, after=after, until=until, limit=limit)
    return [
        json.dumps(m, separators=(",", ":")).encode()
        for m in messages(session, viewer=viewer, events=events)
    ]
