"""Proofs of an order's outcome: photos and signatures, their bytes in object storage."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigId, IdMixin, StrEnumType, UTCDateTime, enum_check, utcnow


class ProofKind(StrEnum):
    PHOTO = "photo"
    SIGNATURE = "signature"


class ProofStage(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


class OrderProof(IdMixin, Base):
    __tablename__ = "order_proofs"
    __table_args__ = (
        enum_check("kind", "kind", ProofKind),
        enum_check("stage", "stage", ProofStage),
        # A retried upload (same user, same Idempotency-Key) finds the proof it already made.
        UniqueConstraint("uploaded_by_id", "idempotency_key"),
        Index("order_proofs_order_id_id_idx", "order_id", "id"),
    )

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    uploaded_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    kind: Mapped[ProofKind] = mapped_column(StrEnumType(ProofKind))
    stage: Mapped[ProofStage] = mapped_column(StrEnumType(ProofStage))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column()
    width: Mapped[int] = mapped_column()
    height: Mapped[int] = mapped_column()
    # Where the stored (re-encoded, metadata-free) bytes are; unique, as the orphan sweep
    # deletes objects no row names.
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # Fingerprint of the upload (kind, stage, bytes) a repeated key must match.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
