"""stores and orders: pickup_address optional (the web admin's store form treats it so)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("stores", "orders")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("pickup_address", existing_type=sa.String(300), nullable=True)
    # Stores created without an address were stored as '' before; none is NULL from now on.
    op.execute(sa.text("UPDATE stores SET pickup_address = NULL WHERE pickup_address = ''"))


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            sa.text(f"UPDATE {table} SET pickup_address = '' WHERE pickup_address IS NULL")  # noqa: S608
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("pickup_address", existing_type=sa.String(300), nullable=False)
