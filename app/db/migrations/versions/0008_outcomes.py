"""courier duty (users.on_duty) and returned failed orders (orders.returned_at)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("on_duty", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("returned_at", app.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("returned_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("on_duty")
