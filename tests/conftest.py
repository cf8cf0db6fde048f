"""Test harness: real migrations on a real database, one rolled-back transaction per test."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text  # neither reads the app's settings
from sqlalchemy.engine import make_url

# Under pytest-xdist (`make test` runs `pytest -n auto`) each worker process is named gw0, gw1, ...
# and gets a database and a temp dir of its own, so workers never see each other's rows.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_TMP = Path(tempfile.mkdtemp(prefix=f"zariz-test-{WORKER}-" if WORKER else "zariz-test-"))


def worker_database_url(base_url: str, worker: str) -> str:
    """`<db>_<worker>` on the same Postgres server, created if it does not exist yet."""
    if not worker:
        return base_url
    url = make_url(base_url)
    name = f"{url.database}_{worker}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def worker_sqlite_url(base_url: str, worker: str) -> str:
    """A SQLite file named by the developer: `<name>_<worker>.db` beside it, one per worker."""
    url = make_url(base_url)
    if not worker or not url.database or url.database == ":memory:":
        return base_url
    path = Path(url.database)
    return url.set(database=str(path.with_stem(f"{path.stem}_{worker}"))).render_as_string(
        hide_password=False
    )


_BASE_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
if _BASE_DATABASE_URL.startswith("postgresql"):
    TEST_DATABASE_URL = worker_database_url(_BASE_DATABASE_URL, WORKER)
elif _BASE_DATABASE_URL:
    TEST_DATABASE_URL = worker_sqlite_url(_BASE_DATABASE_URL, WORKER)
else:
    TEST_DATABASE_URL = f"sqlite:///{_TMP}/test.db"
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
        # The in-process live servers (tests/live.py) end a lapsed session's stream within 0.3 s,
        # and browsers reconnect after 0.5 s, rather than the production 5 s and 3 s.
        "SSE_AUTH_RECHECK_SECONDS": "0.3",
        "SSE_RETRY_MS": "500",
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
from sqlalchemy import Connection, Engine  # noqa: E402
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


def pytest_report_header(config: pytest.Config) -> str:
    backend = "PostgreSQL" if IS_POSTGRES else "SQLite"
    where = TEST_DATABASE_URL.split("@")[-1]
    if getattr(config.option, "numprocesses", None):
        # The header comes from the xdist controller; each worker uses a database of its own.
        where = f"{where} + _gw0, _gw1, ..., one per xdist worker" if _BASE_DATABASE_URL else ""
        where = where or "a temp file per xdist worker"
    return f"zariz database under test: {backend} ({where})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow_first(items)
    if IS_POSTGRES:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://... (CI always does)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def slow_first(items: list[pytest.Item]) -> None:
    """Files with `slow` tests (servers, browsers, processes) before the rest, each file's tests
    in their own order. `make test` hands files to the workers in this order
    (`--no-loadscope-reorder`), so the long ones start first and the many short ones even out the
    end; xdist's default, the files with the most tests first, left a browser file for last."""
    slow_files = {item.path for item in items if "slow" in item.keywords}
    items.sort(key=lambda item: item.path not in slow_files)


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
