"""Test harness: real migrations on a real database, one rolled-back transaction per test."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="zariz-test-"))
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.db"
# Settings are read once; set them before anything imports the app.
os.environ.update(
    {
        "ZARIZ_ENV": "test",
        "DATABASE_URL": TEST_DATABASE_URL,
        "JWT_SECRET": "test-secret-" + "x" * 40,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "1024",
        "ARGON2_PARALLELISM": "1",
        "PUSH_WORKER": "off",
        "RATE_LIMIT_STORAGE": "memory://",
        "LOG_LEVEL": "INFO",
        # Proof files of the tests go to their temporary directory, not the checkout's var/.
        "PROOF_STORAGE_DIR": str(_TMP / "proofs"),
    }
)
for _key in ("APNS_KEY_ID", "APNS_TEAM_ID", "APNS_KEY", "APNS_KEY_FILE", "APNS_TOPIC", "APNS_URL"):
    os.environ.pop(_key, None)

import pytest  # noqa: E402
from alembic import command  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Connection, Engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.api.deps import get_session, get_sessions  # noqa: E402
from app.core import ratelimit  # noqa: E402
from app.core.config import Settings, get_settings  # noqa: E402
from app.db.migrations import alembic_config  # noqa: E402
from app.db.session import build_engine  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.principal_cache import principals  # noqa: E402

IS_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
pytest_plugins = ["tests.orders_helpers", "tests.live", "tests.sse_live", "tests.s3_server"]


def pytest_report_header() -> str:
    backend = "PostgreSQL" if IS_POSTGRES else "SQLite"
    return f"zariz database under test: {backend} ({TEST_DATABASE_URL.split('@')[-1]})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if IS_POSTGRES:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://... (CI always does)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def reset_schema(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    else:
        for (name,) in connection.execute(
            text("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        ).all():
            connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    connection.commit()


def migrate(connection: Connection, revision: str = "head", *, down: bool = False) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["skip_logging"] = True
    if down:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)
    connection.commit()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = build_engine(TEST_DATABASE_URL, settings)
    with eng.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        reset_schema(conn)
        migrate(conn)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    ratelimit.reset_all()
    # Rolled-back tests reuse ids (and so, within a second, identical tokens): no principal
    # cached by an earlier test may answer for this one.
    principals.invalidate()


def bind_to(application: FastAPI, db: Session) -> FastAPI:
    """Points the app's session dependencies at the test's rolled-back session."""

    def same_session() -> Iterator[Session]:
        # Like the real dependency, uncommitted work is dropped when the request ends, and also
        # when it failed, so one 500 does not leave every later request a PendingRollbackError.
        try:
            yield db
        finally:
            db.rollback()

    application.dependency_overrides[get_session] = same_session

    @contextmanager
    def same_session_scope() -> Iterator[Session]:
        yield db  # streamed bodies' short sessions: the test's one, left open

    application.dependency_overrides[get_sessions] = lambda: same_session_scope
    return application


@pytest.fixture(scope="session")
def shared_app() -> FastAPI:
    """One app for the whole run (as Polar's tests do): building one is cheap, but its first
    requests are not (middleware stack, routes' handlers and validators are built lazily), and
    with an app per test every test paid for them."""
    return create_app()


@pytest.fixture
def app(shared_app: FastAPI, db: Session) -> Iterator[FastAPI]:
    """The shared app on this test's session; the overrides go when the test ends."""
    bind_to(shared_app, db)
    try:
        yield shared_app
    finally:
        shared_app.dependency_overrides.clear()


@pytest.fixture
def fresh_app(db: Session) -> FastAPI:
    """An app of this test's own, for a test that adds routes or middleware to it."""
    return bind_to(create_app(), db)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
