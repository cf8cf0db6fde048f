"""Delivery orders and their lifecycle statuses."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import (
    Base,
    BigId,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    undeleted_index,
)


def digits_of(phone: str | None) -> str:
    return "".join(ch for ch in phone or "" if ch.isdigit())


class OrderStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.FAILED, OrderStatus.CANCELED})
# Statuses whose boxes count against the courier's capacity.
LOAD_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.PICKED_UP)


class Order(IdMixin, TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        enum_check("status", "status", OrderStatus),
        CheckConstraint("boxes_count BETWEEN 1 AND 200", name="boxes_count"),
        # The hot lists: the pool and status filters, a store's orders, a courier's orders;
        # all newest first by id, and only undeleted rows.
        undeleted_index("orders_status_id_idx", "status", "id"),
        undeleted_index("orders_store_id_id_idx", "store_id", "id"),
        undeleted_index("orders_courier_id_status_idx", "courier_id", "status"),
        Index("orders_created_at_idx", "created_at"),
        # due_before= and sort=due walk the delivery deadlines.
        undeleted_index("orders_deliver_before_id_idx", "deliver_before", "id"),
    )

    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    courier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    status: Mapped[OrderStatus] = mapped_column(StrEnumType(OrderStatus), default=OrderStatus.NEW)
    # None when neither the order nor its store names a pickup address.
    pickup_address: Mapped[str | None] = mapped_column(String(300))
    delivery_address: Mapped[str] = mapped_column(String(300))
    recipient_first_name: Mapped[str] = mapped_column(String(100))
    recipient_last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    # The phone's digits alone, for substring search whatever the separators (kept by
    # fill_phone_digits below and by bulk UPDATEs that change the phone; trigram-indexed on
    # Postgres by migration 0010).
    phone_digits: Mapped[str] = mapped_column(String(32), default="", server_default="")
    street: Mapped[str] = mapped_column(String(200))
    building_no: Mapped[str] = mapped_column(String(20))
    floor: Mapped[str | None] = mapped_column(String(20))
    apartment: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)
    boxes_count: Mapped[int] = mapped_column()
    boxes_multiplier: Mapped[int] = mapped_column()
    price_total: Mapped[int] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    # One of the configured FAILURE_REASONS; failure_reason keeps the courier's note.
    failure_reason_code: Mapped[str | None] = mapped_column(String(32))
    # Who took the delivery, as the courier typed it on the delivered transition.
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    # A failed order handed back to its store: it stays failed and can no longer be redelivered.
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Time windows (UTC): when the order may be picked up and must be delivered. `late` in the
    # read models is computed from deliver_before and the clock, never stored.
    pickup_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pickup_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deliver_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deliver_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@event.listens_for(Order, "before_insert")
@event.listens_for(Order, "before_update")
def fill_phone_digits(_mapper: Any, _connection: Any, order: Order) -> None:
    order.phone_digits = digits_of(order.phone)
