"""Recording an order event with its side effects: push jobs and the committed-event signal."""

from typing import Any

from sqlalchemy.orm import Session

from app.core.metrics import ORDER_EVENTS
from app.db.models import EventType, Order, OrderEvent, OrderStatus
from app.services import signals
from app.services.auth import Principal
from app.services.outbox import enqueue_for_event


def in_pool(status: str | None, courier_id: int | None, deleted: bool = False) -> bool:
    return status == OrderStatus.NEW and courier_id is None and not deleted


def record_event(
    session: Session,
    *,
    order: Order,
    type: EventType,
    actor: Principal | None,
    from_status: str | None,
    prev_courier_id: int | None,
    was_in_pool: bool,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    """Adds the event, its push jobs and its signal to the caller's open transaction."""
    event = OrderEvent(
        order_id=order.id,
        type=type,
        from_status=from_status,
        to_status=order.status,
        actor_id=actor.user.id if actor else None,
        actor_role=actor.role if actor else None,
        courier_id=order.courier_id,
        prev_courier_id=prev_courier_id if prev_courier_id != order.courier_id else None,
        store_id=order.store_id,
        reason=reason,
        data=data,
        pool_change=was_in_pool
        or in_pool(order.status, order.courier_id, order.deleted_at is not None),
    )
    session.add(event)
    session.flush()
    enqueue_for_event(session, event)
    signals.notify(session, signals.EVENTS, str(event.id))
    ORDER_EVENTS.labels(type=type).inc()
    return event
