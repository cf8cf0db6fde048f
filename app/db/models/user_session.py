"""Refresh-token sessions: one row per issued refresh token, chained into rotation families."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, IdMixin, TimestampMixin, UTCDateTime


class UserSession(IdMixin, TimestampMixin, Base):
    __tablename__ = "user_sessions"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    # The id of the family's first row; a reused rotated token revokes the whole family.
    family_id: Mapped[int | None] = mapped_column(BigId, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when the session is dead (logout, reuse, suspension, password change).
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when this token was rotated; presenting it again is reuse.
    replaced_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_sessions.id"), index=True
    )
    user_agent: Mapped[str | None] = mapped_column(String(300))
