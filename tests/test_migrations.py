"""Migrations: a round trip on a scratch database, and models that agree with them."""

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from app.db.base import Base
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
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
