"""Migrations: a round trip on a scratch database, and models that agree with them."""

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from app.db.base import Base
from app.db.migrations import include_object
from app.db.session import build_engine
from tests.conftest import _TMP, IS_POSTGRES, TEST_DATABASE_URL, migrate


@pytest.fixture
def scratch_engine() -> Iterator[Engine]:
    if IS_POSTGRES:
        name = f"zariz_mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            make_url(TEST_DATABASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = build_engine(
            make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        )
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        engine = build_engine(f"sqlite:///{_TMP}/scratch-{uuid.uuid4().hex[:8]}.db")
        yield engine
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(scratch_engine: Engine) -> None:
    with scratch_engine.connect() as conn:
        migrate(conn)
        assert "orders" in inspect(conn).get_table_names()
        migrate(conn, "base", down=True)
    with scratch_engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate(conn)
        assert {"users", "orders", "push_jobs"} <= set(inspect(conn).get_table_names())


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            ),
            Base.metadata,
        )
    assert diff == []


def test_0005_gives_answered_keys_their_order_and_downgrades_safely(
    scratch_engine: Engine,
) -> None:
    with scratch_engine.connect() as conn:
        migrate(conn, "0004")
        conn.execute(
            text(
                "INSERT INTO users (id, role, status, name, email, password_hash) "
                "VALUES (1, 'store', 'active', 'S', 's@example.com', 'x')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO stores (id, name, status, pickup_address) "
                "VALUES (1, 'S', 'active', 'A')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO orders (id, store_id, status, pickup_address, delivery_address, "
                "recipient_first_name, recipient_last_name, phone, street, building_no, "
                "boxes_count, boxes_multiplier, price_total) "
                "VALUES (7, 1, 'new', 'A', 'B', 'N', 'L', '1', 'S', '1', 1, 1, 35)"
            )
        )
        keys = [
            ("answered", 201, '{"id": 7, "status": "new"}', "/v1/orders"),
            ("lost-create", None, None, "/v1/orders"),  # committed, but its result never written
            ("lost-claim", None, None, "/v1/orders/7/claim"),
        ]
        for key, status, body, path in keys:
            conn.execute(
                text(
                    "INSERT INTO idempotency_keys (user_id, key, method, path, request_hash, "
                    "status_code, response_body, created_at) "
                    "VALUES (1, :key, 'POST', :path, 'h', :status, :body, CURRENT_TIMESTAMP)"
                ),
                {"key": key, "status": status, "body": body, "path": path},
            )
        conn.commit()
        migrate(conn, "0005")
        rows = conn.execute(
            text("SELECT key, order_id, status_code FROM idempotency_keys ORDER BY key")
        ).all()
        assert [tuple(r) for r in rows] == [
            ("answered", 7, 201),
            ("lost-claim", None, 200),
            ("lost-create", None, 201),
        ]
        migrate(conn, "0004", down=True)
        columns = {c["name"] for c in inspect(conn).get_columns("idempotency_keys")}
        assert "order_id" not in columns
        assert "response_body" in columns
        statuses = conn.execute(text("SELECT status_code FROM idempotency_keys")).scalars().all()
        assert statuses == [None, None, None]  # the old code waits; it never replays a null body
