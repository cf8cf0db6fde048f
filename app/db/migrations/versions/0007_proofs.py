"""proofs of delivery, failure reason codes, recipient name, per-store proof policy

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_proofs",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("uploaded_by_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=200), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", BIG_ID, sa.Identity(always=False), nullable=False),
        sa.CheckConstraint("kind IN ('photo', 'signature')", name=op.f("order_proofs_kind_check")),
        sa.CheckConstraint("stage IN ('pickup', 'dropoff')", name=op.f("order_proofs_stage_check")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("order_proofs_order_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("order_proofs_uploaded_by_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("order_proofs_pkey")),
        sa.UniqueConstraint("storage_key", name=op.f("order_proofs_storage_key_key")),
        sa.UniqueConstraint(
            "uploaded_by_id",
            "idempotency_key",
            name=op.f("order_proofs_uploaded_by_id_idempotency_key_key"),
        ),
    )
    op.create_index("order_proofs_order_id_id_idx", "order_proofs", ["order_id", "id"])
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("failure_reason_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("recipient_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("proof_policy", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("proof_policy")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("recipient_name")
        batch.drop_column("failure_reason_code")
    op.drop_index("order_proofs_order_id_id_idx", table_name="order_proofs")
    op.drop_table("order_proofs")
