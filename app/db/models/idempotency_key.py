"""Requests sent with an Idempotency-Key: the order each produced, replayed on repeats for 24 h."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, IdMixin, UTCDateTime, utcnow


class IdempotencyKey(IdMixin, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Set before the transaction that inserts the key commits: a committed key always names its
    # order. Null only on keys written before migration 0005 whose outcome was never recorded.
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    status_code: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
