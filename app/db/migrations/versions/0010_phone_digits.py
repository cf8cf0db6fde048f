"""orders.phone_digits: the recipient phone's digits, searched by substring (trigram on Postgres)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM_INDEX = "orders_phone_digits_trgm_idx"
# SQLite has no regexp_replace: the separators phones are typed with (app/core/security.py).
SQLITE_DIGITS = "phone"
for _sep in (" ", "-", "+", "(", ")", ".", "/"):
    SQLITE_DIGITS = f"replace({SQLITE_DIGITS}, '{_sep}', '')"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("phone_digits", sa.String(length=32), server_default="", nullable=False)
        )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE orders SET phone_digits = regexp_replace(phone, '[^0-9]', '', 'g')")
        available = bind.scalar(
            sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")
        )
        if available:
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            # The operator class lives in the extension's schema, which need not be on this
            # connection's search_path (a database migrated into a second schema).
            schema = bind.scalar(
                sa.text(
                    "SELECT n.nspname FROM pg_extension e "
                    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
                )
            )
            op.execute(
                f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON orders "
                f'USING gin (phone_digits "{schema}".gin_trgm_ops) WHERE deleted_at IS NULL'
            )
    else:
        op.execute(f"UPDATE orders SET phone_digits = {SQLITE_DIGITS}")  # noqa: S608 (constants)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("phone_digits")
