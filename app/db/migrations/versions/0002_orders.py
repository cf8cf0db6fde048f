"""orders, order events and idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "courier_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pickup_address", sa.String(length=300), nullable=False),
        sa.Column("delivery_address", sa.String(length=300), nullable=False),
        sa.Column("recipient_first_name", sa.String(length=100), nullable=False),
        sa.Column("recipient_last_name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("building_no", sa.String(length=20), nullable=False),
        sa.Column("floor", sa.String(length=20), nullable=True),
        sa.Column("apartment", sa.String(length=20), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("boxes_count", sa.Integer(), nullable=False),
        sa.Column("boxes_multiplier", sa.Integer(), nullable=False),
        sa.Column("price_total", sa.Integer(), nullable=False),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("assigned_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("picked_up_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("deleted_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            app.db.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            app.db.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('new', 'assigned', 'accepted', 'picked_up', "
            "'delivered', 'failed', 'canceled')",
            name=op.f("orders_status_check"),
        ),
        sa.CheckConstraint("boxes_count BETWEEN 1 AND 200", name=op.f("orders_boxes_count_check")),
        sa.ForeignKeyConstraint(["courier_id"], ["users.id"], name=op.f("orders_courier_id_fkey")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("orders_created_by_id_fkey")
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("orders_store_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("orders_pkey")),
    )

    op.create_index(
        "orders_courier_id_status_idx",
        "orders",
        ["courier_id", "status"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("orders_created_at_idx", "orders", ["created_at"], unique=False)
    op.create_index(
        "orders_status_id_idx",
        "orders",
        ["status", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "orders_store_id_id_idx",
        "orders",
        ["store_id", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )

    op.create_table(
        "order_events",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=True),
        sa.Column(
            "courier_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "prev_courier_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("pool_change", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("order_events_actor_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("order_events_order_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("order_events_pkey")),
    )

    op.create_index(
        "order_events_courier_id_id_idx", "order_events", ["courier_id", "id"], unique=False
    )
    op.create_index("order_events_order_id_idx", "order_events", ["order_id"], unique=False)
    op.create_index(
        "order_events_prev_courier_id_id_idx",
        "order_events",
        ["prev_courier_id", "id"],
        unique=False,
    )
    op.create_index(
        "order_events_store_id_id_idx", "order_events", ["store_id", "id"], unique=False
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("idempotency_keys_user_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("idempotency_keys_pkey")),
        sa.UniqueConstraint("user_id", "key", name=op.f("idempotency_keys_user_id_key_key")),
    )

    op.create_index(
        "idempotency_keys_created_at_idx", "idempotency_keys", ["created_at"], unique=False
    )


def downgrade() -> None:

    op.drop_table("idempotency_keys")

    op.drop_table("order_events")

    op.drop_table("orders")
