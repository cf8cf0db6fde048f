"""iOS devices that receive push notifications for a user."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, IdMixin, TimestampMixin, UTCDateTime, enum_check


class Platform(StrEnum):
    IOS = "ios"


class ApnsEnvironment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


class Device(IdMixin, TimestampMixin, Base):
    __tablename__ = "devices"
    __table_args__ = (
        enum_check("platform", "platform", Platform),
        enum_check("environment", "environment", ApnsEnvironment),
    )

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_sessions.id"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16), default=Platform.IOS)
    token: Mapped[str] = mapped_column(String(200), unique=True)
    environment: Mapped[str] = mapped_column(String(16), default=ApnsEnvironment.PRODUCTION)
    app_version: Mapped[str | None] = mapped_column(String(50))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
