"""The append-only audit trail of orders; its id is the cursor of the feed and the SSE stream."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, IdMixin, StrEnumType, UTCDateTime, utcnow
from app.db.models.order import OrderStatus

JsonType = JSON().with_variant(JSONB(), "postgresql")


class EventType(StrEnum):
    CREATED = "order.created"
    UPDATED = "order.updated"
    ASSIGNED = "order.assigned"
    UNASSIGNED = "order.unassigned"
    ACCEPTED = "order.accepted"
    DECLINED = "order.declined"
    STATUS_CHANGED = "order.status_changed"
    DELETED = "order.deleted"
    PROOF_ADDED = "order.proof_added"
    REDELIVERED = "order.redelivered"
    RETURNED = "order.returned"
    RELEASED = "order.released"


class ActorRole(StrEnum):
    """Who caused an event: a user's role, or `system` (the worker; no user row)."""

    ADMIN = "admin"
    STORE = "store"
    COURIER = "courier"
    SYSTEM = "system"


class OrderEvent(IdMixin, Base):
    __tablename__ = "order_events"
    __table_args__ = (
        # Scoped feeds walk these by id: a store's events, a courier's events.
        Index("order_events_store_id_id_idx", "store_id", "id"),
        Index("order_events_courier_id_id_idx", "courier_id", "id"),
        Index("order_events_prev_courier_id_id_idx", "prev_courier_id", "id"),
    )

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    type: Mapped[EventType] = mapped_column(StrEnumType(EventType, 32))
    from_status: Mapped[OrderStatus | None] = mapped_column(StrEnumType(OrderStatus))
    to_status: Mapped[OrderStatus | None] = mapped_column(StrEnumType(OrderStatus))
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    actor_role: Mapped[ActorRole | None] = mapped_column(StrEnumType(ActorRole))
    # The courier holding the order after the event.
    courier_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When it happened on the courier's device (an offline action synced later), as the courier
    # sent it, bounded; created_at stays the server's time of recording.
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Denormalised for scoping without a join: the order's store, the courier who held it
    # before the event (so a courier hears that an order left them), and whether the event
    # touches the pool of unassigned orders that open-mode couriers watch.
    store_id: Mapped[int] = mapped_column(BigId)
    prev_courier_id: Mapped[int | None] = mapped_column(BigId)
    pool_change: Mapped[bool] = mapped_column(default=False, server_default=false())
