"""The push outbox: one job per (event, device), written in the event's transaction."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, IdMixin, TimestampMixin, UTCDateTime, enum_check
from app.db.models.order_event import JsonType


class PushStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"


class PushJob(IdMixin, TimestampMixin, Base):
    __tablename__ = "push_jobs"
    __table_args__ = (
        enum_check("status", "status", PushStatus),
        # The worker's claim query: due jobs that are still to be sent.
        Index(
            "push_jobs_due_idx",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'failed')"),
            sqlite_where=text("status IN ('pending', 'failed')"),
        ),
    )

    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("order_events.id"), index=True)
    device_id: Mapped[int] = mapped_column(BigId, ForeignKey("devices.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16), default=PushStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
