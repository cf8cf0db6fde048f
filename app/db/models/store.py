"""Stores that create delivery orders, and which users act for them."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
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


class StoreStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    OFFBOARDED = "offboarded"


class StoreRole(StrEnum):
    OWNER = "owner"
    STAFF = "staff"


class Store(IdMixin, TimestampMixin, Base):
    __tablename__ = "stores"
    __table_args__ = (
        enum_check("status", "status", StoreStatus),
        undeleted_index("stores_name_live_key", "name", unique=True),
    )

    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[StoreStatus] = mapped_column(
        StrEnumType(StoreStatus), default=StoreStatus.ACTIVE
    )
    # Optional: an order of a store without one carries its own pickup address, or none.
    pickup_address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(32))
    box_limit: Mapped[int | None] = mapped_column()
    hours_text: Mapped[str | None] = mapped_column(String(200))
    # Which proofs delivered/failed need (app/schemas/proofs.ProofPolicy); None: the defaults.
    proof_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StoreMembership(IdMixin, TimestampMixin, Base):
    __tablename__ = "store_memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "store_id"),
        enum_check("role_in_store", "role_in_store", StoreRole),
    )

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"), index=True)
    role_in_store: Mapped[StoreRole] = mapped_column(
        StrEnumType(StoreRole), default=StoreRole.STAFF
    )
