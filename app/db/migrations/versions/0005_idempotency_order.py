"""idempotency_keys record the order they produced instead of a stored response body

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Keys answered before this migration get their order from the stored body's `id`. Keys whose
outcome was never recorded (the crash this change removes) keep no order: they answer 409
`idempotency_in_progress`, as they did, until they expire within 24 h.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# A stored body is the OrderRead the key answered: its `id` is the order the key produced.
BACKFILL = {
    "postgresql": """
        UPDATE idempotency_keys SET order_id = (response_body::jsonb ->> 'id')::bigint
        WHERE status_code IS NOT NULL AND response_body IS NOT NULL
          AND jsonb_typeof(response_body::jsonb) = 'object'
          AND EXISTS (
            SELECT 1 FROM orders WHERE orders.id = (response_body::jsonb ->> 'id')::bigint
          )
    """,
    "sqlite": """
        UPDATE idempotency_keys SET order_id = CAST(json_extract(response_body, '$.id') AS INTEGER)
        WHERE status_code IS NOT NULL AND response_body IS NOT NULL
          AND json_type(response_body) = 'object'
          AND EXISTS (
            SELECT 1 FROM orders
            WHERE orders.id = CAST(json_extract(response_body, '$.id') AS INTEGER)
          )
    """,
}


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("order_id", BIG_ID, nullable=True))
        batch.create_foreign_key(
            op.f("idempotency_keys_order_id_fkey"), "orders", ["order_id"], ["id"]
        )
    op.execute(sa.text(BACKFILL[op.get_bind().dialect.name]))
    op.execute(
        sa.text(
            "UPDATE idempotency_keys "
            "SET status_code = CASE WHEN path = '/v1/orders' THEN 201 ELSE 200 END "
            "WHERE status_code IS NULL"
        )
    )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_body")
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response_body", sa.Text(), nullable=True))
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=True)
    # The 0004 code replays a stored body, and none can be rebuilt here: every key reads as still
    # in progress to it (a retry gets 409, never a second order) until it expires.
    op.execute(sa.text("UPDATE idempotency_keys SET status_code = NULL"))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint(op.f("idempotency_keys_order_id_fkey"), type_="foreignkey")
        batch.drop_column("order_id")
