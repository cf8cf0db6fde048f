"""index user_sessions.replaced_by_id: deleting sessions checks this foreign key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("user_sessions_replaced_by_id_idx", "user_sessions", ["replaced_by_id"])


def downgrade() -> None:
    op.drop_index("user_sessions_replaced_by_id_idx", "user_sessions")
