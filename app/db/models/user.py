"""Users of every role: admins, store staff and couriers."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String, text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import (
    Base,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    undeleted_index,
)


class Role(StrEnum):
    ADMIN = "admin"
    STORE = "store"
    COURIER = "courier"


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    OFFBOARDED = "offboarded"


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        enum_check("role", "role", Role),
        enum_check("status", "status", UserStatus),
        CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="contact"),
        # Unique among live users only: a soft-deleted account frees its email and phone.
        undeleted_index("users_email_live_key", "email", unique=True),
        undeleted_index("users_phone_live_key", "phone", unique=True),
    )

    role: Mapped[Role] = mapped_column(StrEnumType(Role))
    status: Mapped[UserStatus] = mapped_column(StrEnumType(UserStatus), default=UserStatus.ACTIVE)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    capacity_boxes: Mapped[int] = mapped_column(default=8, server_default=text("8"))
    # Couriers only: an off-duty courier takes no orders and hears nothing of the pool.
    on_duty: Mapped[bool] = mapped_column(default=True, server_default=true())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE and self.deleted_at is None
