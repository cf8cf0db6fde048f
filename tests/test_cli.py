"""The `zariz` command run as a real process: migrate, create-admin, seed-demo and its refusal."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.security import verify_password
from app.services.demo import DEMO_PASSWORD
from app.services.health import head_revision

pytestmark = pytest.mark.slow

ZARIZ = Path(sys.executable).with_name("zariz")


def run_zariz(
    *args: str, cwd: Path, database_url: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    # cwd is a temp dir so a developer's .env in the repo is never read.
    environment = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        [str(ZARIZ), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        input=stdin,
        text=True,
        timeout=60,
        check=False,
    )


def rows(db_file: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_file) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def migrated(workdir: Path) -> Path:
    """A scratch SQLite file migrated by `zariz migrate`, shared by this module's tests."""
    db_file = workdir / "cli.db"
    result = run_zariz("migrate", cwd=workdir, database_url=f"sqlite:///{db_file}")
    assert result.returncode == 0, result.stderr
    return db_file


def test_zariz_is_installed_next_to_the_interpreter() -> None:
    assert ZARIZ.exists(), f"{ZARIZ} missing: run `make install`"


def test_migrate_brings_a_new_database_to_head(migrated: Path) -> None:
    assert rows(migrated, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    tables = {name for (name,) in rows(migrated, "SELECT name FROM sqlite_master")}
    assert {"users", "user_sessions", "orders", "order_events", "push_jobs"} <= tables


def test_migrate_twice_is_a_no_op(migrated: Path, workdir: Path) -> None:
    result = run_zariz("migrate", cwd=workdir, database_url=f"sqlite:///{migrated}")
    assert result.returncode == 0, result.stderr
    assert rows(migrated, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_create_admin_makes_an_active_admin_who_can_log_in(migrated: Path, workdir: Path) -> None:
    result = run_zariz(
        "create-admin",
        "--name",
        "Ops Admin",
        "--email",
        "Ops.Admin@Example.com",
        "--password",
        "a long admin password",
        cwd=workdir,
        database_url=f"sqlite:///{migrated}",
    )
    assert result.returncode == 0, result.stderr
    assert "ops.admin@example.com" in result.stdout
    [(role, status, password_hash)] = rows(
        migrated,
        "SELECT role, status, password_hash FROM users WHERE email = 'ops.admin@example.com'",
    )
    assert (role, status) == ("admin", "active")
    assert verify_password("a long admin password", str(password_hash))
    assert "a long admin password" not in result.stdout + result.stderr


def test_create_admin_refuses_a_password_below_the_policy(migrated: Path, workdir: Path) -> None:
    result = run_zariz(
        "create-admin",
        "--name",
        "Weak Admin",
        "--email",
        "weak.admin@example.com",
        "--password",
        "x",
        cwd=workdir,
        database_url=f"sqlite:///{migrated}",
    )
    assert result.returncode == 2
    assert "at least 8 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert rows(migrated, "SELECT id FROM users WHERE email = 'weak.admin@example.com'") == []


def test_seed_demo_prints_logins_and_is_idempotent(migrated: Path, workdir: Path) -> None:
    first = run_zariz("seed-demo", cwd=workdir, database_url=f"sqlite:///{migrated}")
    assert first.returncode == 0, first.stderr
    assert "admin@zariz.demo" in first.stdout
    assert "courier1@zariz.demo" in first.stdout
    assert DEMO_PASSWORD in first.stdout
    counts = (
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM stores),"
        " (SELECT count(*) FROM store_memberships), (SELECT count(*) FROM orders),"
        " (SELECT count(*) FROM order_events)"
    )
    after_first = rows(migrated, counts)
    # The outcomes: a failed order returned to the store, another sent out again.
    assert rows(
        migrated,
        "SELECT type FROM order_events WHERE type IN ('order.returned', 'order.redelivered')"
        " ORDER BY type",
    ) == [("order.redelivered",), ("order.returned",)]

    second = run_zariz("seed-demo", cwd=workdir, database_url=f"sqlite:///{migrated}")
    assert second.returncode == 0, second.stderr
    assert rows(migrated, counts) == after_first
    assert second.stdout == first.stdout


def test_seed_demo_is_refused_in_production(workdir: Path) -> None:
    # Production settings need a Postgres URL; the refusal comes before any connection.
    result = run_zariz(
        "seed-demo",
        cwd=workdir,
        database_url="postgresql+psycopg://zariz@127.0.0.1/never_contacted",
        ZARIZ_ENV="production",
        JWT_SECRET="a-production-grade-secret-" + "q" * 40,
        # conftest's test-speed Argon2 cost would be refused by the production guard.
        ARGON2_TIME_COST="3",
        ARGON2_MEMORY_COST="65536",
    )
    assert result.returncode == 2
    assert "refused in production" in result.stderr
    assert "Traceback" not in result.stderr


def one_line_refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_create_admin_without_password_reads_it_from_stdin(migrated: Path, workdir: Path) -> None:
    result = run_zariz(
        "create-admin",
        "--name",
        "Asked Admin",
        "--email",
        "asked@example.com",
        cwd=workdir,
        database_url=f"sqlite:///{migrated}",
        stdin="a password typed in\n",
    )
    assert result.returncode == 0, result.stderr
    [(password_hash,)] = rows(
        migrated, "SELECT password_hash FROM users WHERE email = 'asked@example.com'"
    )
    assert verify_password("a password typed in", str(password_hash))
    assert "a password typed in" not in result.stdout + result.stderr


def test_a_domain_error_is_one_line_and_exit_2(migrated: Path, workdir: Path) -> None:
    args = ("create-admin", "--name", "Twice", "--email", "twice@example.com")
    first = run_zariz(
        *args, cwd=workdir, database_url=f"sqlite:///{migrated}", stdin="pw 1234567890\n"
    )
    assert first.returncode == 0, first.stderr
    again = run_zariz(
        *args, cwd=workdir, database_url=f"sqlite:///{migrated}", stdin="pw 1234567890\n"
    )
    assert "create-admin" in one_line_refusal(again)


def test_bad_settings_are_one_line_and_exit_2(workdir: Path) -> None:
    result = run_zariz(
        "migrate", cwd=workdir, database_url=f"sqlite:///{workdir}/x.db", ACCESS_TOKEN_TTL="soon"
    )
    assert "ACCESS_TOKEN_TTL".lower() in one_line_refusal(result).lower()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unmigrated_database_is_said_once_at_start(workdir: Path, command: str) -> None:
    result = run_zariz(command, cwd=workdir, database_url=f"sqlite:///{workdir}/empty-{command}.db")
    message = one_line_refusal(result)
    assert f"code expects {head_revision()}" in message
    assert "run `zariz migrate`" in message


def test_half_configured_apns_stops_serve_as_it_stops_the_worker(
    migrated: Path, workdir: Path
) -> None:
    half = {"APNS_KEY_ID": "K", "APNS_TEAM_ID": "T", "PUSH_WORKER": "inline"}
    for command in ("serve", "worker"):
        result = run_zariz(command, cwd=workdir, database_url=f"sqlite:///{migrated}", **half)
        message = one_line_refusal(result)
        assert "half-configured" in message
        assert "APNS_TOPIC" in message
