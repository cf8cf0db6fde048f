"""Recording an order event with its side effects: push jobs and the committed-event signal."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.core.metrics import ORDER_EVENTS
from app.db.models import ActorRole, EventType, Order, OrderEvent, OrderStatus
from app.services import signals
from app.services.auth import Principal
from app.services.outbox import enqueue_for_event


def in_pool(status: str | None, courier_id: int | None, deleted: bool = False) -> bool:
    return status == OrderStatus.NEW and courier_id is None and not deleted


@dataclass(frozen=True)
class SystemActor:
    """The server itself as an event's actor (the worker's auto-release): no user row."""


SYSTEM = SystemActor()
Actor = Principal | SystemActor


@dataclass(frozen=True)
class OrderState:
    """What an event needs of the order as it was before the change: taken before the UPDATE."""

    status: OrderStatus
    courier_id: int | None
    in_pool: bool

    @classmethod
    def of(cls, order: Order) -> "OrderState":
        return cls(
            status=OrderStatus(order.status),
            courier_id=order.courier_id,
            in_pool=in_pool(order.status, order.courier_id, order.deleted_at is not None),
        )


def _actor_role(actor: Actor | None) -> ActorRole | None:
    if isinstance(actor, SystemActor):
        return ActorRole.SYSTEM
    return ActorRole(actor.role) if actor is not None else None


def record_event(
    session: Session,
    *,
    order: Order,
    before: OrderState | None,
    type: EventType,
    actor: Actor | None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> OrderEvent:
    """Adds the event, its push jobs and its signal to the caller's open transaction.

    `order` is the order after the change, `before` its state before (None: it was just created);
    the trail's from-status, the courier it left and whether the pool changed follow from both.
    """
    prev_courier_id = before.courier_id if before is not None else None
    event = OrderEvent(
        order_id=order.id,
        type=type,
        from_status=before.status if before is not None else None,
        to_status=order.status,
        actor_id=actor.user.id if isinstance(actor, Principal) else None,
        actor_role=_actor_role(actor),
        courier_id=order.courier_id,
        prev_courier_id=prev_courier_id if prev_courier_id != order.courier_id else None,
        store_id=order.store_id,
        reason=reason,
        data=data,
        occurred_at=occurred_at,
        # An order entering or leaving the pool (or changing inside it) is news to the couriers
        # watching the pool, whoever else hears of it.
        pool_change=(before is not None and before.in_pool)
        or in_pool(order.status, order.courier_id, order.deleted_at is not None),
    )
    session.add(event)
    session.flush()
    enqueue_for_event(session, event)
    signals.notify(session, signals.EVENTS, str(event.id))
    ORDER_EVENTS.labels(type=type).inc()
    return event
