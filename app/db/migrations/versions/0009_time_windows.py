"""orders: pickup/delivery time windows; order_events: the device time of an action

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW_COLUMNS = ("pickup_after", "pickup_before", "deliver_after", "deliver_before")
UNDELETED = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    for name in WINDOW_COLUMNS:
        op.add_column(
            "orders", sa.Column(name, app.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "orders_deliver_before_id_idx",
        "orders",
        ["deliver_before", "id"],
        unique=False,
        postgresql_where=UNDELETED,
        sqlite_where=UNDELETED,
    )
    op.add_column(
        "order_events",
        sa.Column("occurred_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("occurred_at")
    op.drop_index(
        "orders_deliver_before_id_idx",
        table_name="orders",
        postgresql_where=UNDELETED,
        sqlite_where=UNDELETED,
    )
    with op.batch_alter_table("orders") as batch:
        for name in reversed(WINDOW_COLUMNS):
            batch.drop_column(name)
