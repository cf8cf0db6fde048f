"""devices and the push outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("app_version", sa.String(length=50), nullable=True),
        sa.Column("last_seen_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
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
            "environment IN ('production', 'sandbox')", name=op.f("devices_environment_check")
        ),
        sa.CheckConstraint("platform IN ('ios')", name=op.f("devices_platform_check")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["user_sessions.id"], name=op.f("devices_session_id_fkey")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("devices_user_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("devices_pkey")),
        sa.UniqueConstraint("token", name=op.f("devices_token_key")),
    )

    op.create_index("devices_session_id_idx", "devices", ["session_id"], unique=False)
    op.create_index("devices_user_id_idx", "devices", ["user_id"], unique=False)

    op.create_table(
        "push_jobs",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
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
            "status IN ('pending', 'sent', 'failed', 'dead', 'skipped')",
            name=op.f("push_jobs_status_check"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("push_jobs_device_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["order_events.id"], name=op.f("push_jobs_event_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("push_jobs_pkey")),
    )

    op.create_index("push_jobs_device_id_idx", "push_jobs", ["device_id"], unique=False)
    op.create_index(
        "push_jobs_due_idx",
        "push_jobs",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        sqlite_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.create_index("push_jobs_event_id_idx", "push_jobs", ["event_id"], unique=False)


def downgrade() -> None:

    op.drop_table("push_jobs")

    op.drop_table("devices")
