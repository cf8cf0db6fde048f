"""Benchmark: POST /v1/auth/refresh costs the same with 10,000 sessions in the table as with 1.

    python -m bench.refresh_bench                        # scratch SQLite file
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_ops \\
        python -m bench.refresh_bench

The database BENCH_DATABASE_URL names must not exist: the bench creates it, migrates it, and
drops it at the end, so it can never touch real data. Refreshes go through the whole app
(in-process TestClient, real engine, real commits), each presenting the token the previous one
returned. Each phase times --requests refreshes after a warm-up and reports the median (and
the best median of 50-request blocks, which bursts of other work on a shared machine cannot
inflate); then --sessions rows are bulk-inserted for the same user (the worst case for a lookup
by user) and the phase is repeated. A control column times one unindexed lookup in the same
table, i.e. what refresh would pay per request if it scanned. The statements one refresh sends
for user_sessions are captured and EXPLAINed, to show they go by primary key.
"""

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WARMUP = 30
# Other work on a shared machine can slow a whole stretch of requests; the fastest block's
# median is the figure such bursts cannot inflate.
BLOCK = 50


@dataclass
class Phase:
    label: str
    rows_before: int
    rows_after: int
    requests: int
    median_ms: float
    p90_ms: float
    min_ms: float
    best_block_ms: float
    scan_ms: float


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """Creates the named database (refusing one that exists), yields its URL, then drops it."""
    if not url:
        tmp = Path(tempfile.mkdtemp(prefix="zariz-bench-"))
        try:
            yield f"sqlite:///{tmp}/bench.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() == "sqlite":
        if not name or Path(name).exists():
            raise SystemExit(f"{url}: give a SQLite file that does not exist yet")
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(name + suffix).unlink(missing_ok=True)
        return
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"{url}: name a scratch database (letters, digits, _)")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists:
            raise SystemExit(f"database {name} exists; the bench only uses one it creates")
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def configure_environment(database_url: str) -> None:
    # Settings are read once, on first import of the app: set them before that.
    os.environ.update(
        {
            "ZARIZ_ENV": "development",
            "DATABASE_URL": database_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            # Only the one login hashes a password; refresh never does.
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_COST": "1024",
            "ARGON2_PARALLELISM": "1",
            "PUSH_WORKER": "off",
            "RATE_LIMIT_STORAGE": "memory://",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DATABASE_URL_DIRECT", None)


def server_version(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        return f"PostgreSQL {conn.scalar(text('SHOW server_version'))}"


def count_sessions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM user_sessions")) or 0)


def scan_cost_ms(engine: Engine, *, token_hash: str, repeats: int = 50) -> float:
    """Control: the median cost of finding a session by token hash, which has no index (a scan).

    Shows what refresh would cost if it searched the table instead of going by primary key.
    """
    query = text("SELECT id FROM user_sessions WHERE token_hash = :h")
    times = []
    with engine.connect() as conn:
        for _ in range(repeats):
            started = time.perf_counter()
            conn.execute(query, {"h": token_hash}).all()
            times.append((time.perf_counter() - started) * 1000)
        conn.rollback()
    return statistics.median(times)


def bulk_insert_sessions(engine: Engine, *, user_id: int, count: int) -> float:
    """Adds `count` live sessions of one user in one executemany; returns seconds taken."""
    from sqlalchemy import insert

    from app.db.models import UserSession

    now = datetime.now(UTC)
    rows = [
        {
            "user_id": user_id,
            "token_hash": secrets.token_hex(32),
            "expires_at": now + timedelta(days=14),
            "user_agent": "bench",
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(count)
    ]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(UserSession), rows)
        conn.execute(text("UPDATE user_sessions SET family_id = id WHERE family_id IS NULL"))
    with engine.connect() as conn:
        # Fresh planner statistics, as autovacuum would soon give a real table.
        conn.execute(text("ANALYZE user_sessions"))
        conn.commit()
    return time.perf_counter() - started


class Refresher:
    """Refreshes through the app, always presenting the newest refresh token."""

    def __init__(self, client: "TestClient", refresh_token: str) -> None:
        self.client = client
        self.token = refresh_token

    def once(self) -> float:
        started = time.perf_counter()
        response = self.client.post(
            "/v1/auth/refresh", json={"refresh_token": self.token}, headers={"User-Agent": "bench"}
        )
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"refresh failed: {response.status_code} {response.text}")
        self.token = str(response.json()["refresh_token"])
        return elapsed

    def phase(self, engine: Engine, *, label: str, requests: int, prune: bool = False) -> Phase:
        for _ in range(WARMUP):
            self.once()
        if prune:
            # Drop the warm-up's rotated rows: the phase starts with the live session alone.
            live_id = int(self.token.partition(".")[0])
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM user_sessions WHERE id <> :id"), {"id": live_id})
        before = count_sessions(engine)
        times_ms = [self.once() * 1000 for _ in range(requests)]
        return Phase(
            label=label,
            rows_before=before,
            rows_after=count_sessions(engine),
            requests=requests,
            median_ms=statistics.median(times_ms),
            p90_ms=statistics.quantiles(times_ms, n=10)[8],
            min_ms=min(times_ms),
            best_block_ms=min(
                statistics.median(times_ms[i : i + BLOCK]) for i in range(0, len(times_ms), BLOCK)
            ),
            scan_ms=scan_cost_ms(engine, token_hash=secrets.token_hex(32)),
        )


def captured_statements(engine: Engine, refresher: Refresher) -> list[tuple[str, Any]]:
    """The SQL (and parameters) that one refresh sends for user_sessions."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if "user_sessions" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        refresher.once()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def shorten(statement: str) -> str:
    """One line, column lists and casts elided: what the statement looks up is in its WHERE."""
    statement = " ".join(statement.split())
    statement = re.sub(r"::(BIGINT|VARCHAR|TIMESTAMP WITH TIME ZONE)", "", statement)
    statement = re.sub(r"%\((\w+)\)s", r":\1", statement)
    statement = re.sub(r"^SELECT .*? FROM", "SELECT ... FROM", statement)
    return re.sub(r"^(INSERT INTO \S+) .* (RETURNING .*)$", r"\1 (...) VALUES (...) \2", statement)


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[tuple[str, list[str]]]:
    """The plan of each statement, without running it (EXPLAIN never executes writes)."""
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (COSTS OFF) "
    plans = []
    with engine.connect() as conn:
        for statement, params in statements:
            result = conn.exec_driver_sql(prefix + statement, params).all()
            lines = [str(row[-1]) for row in result]
            plans.append((shorten(statement), lines))
        conn.rollback()
    return plans


def run(database_url: str, *, requests: int, session_counts: list[int]) -> dict[str, Any]:
    configure_environment(database_url)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from alembic import command
    from fastapi.testclient import TestClient

    from app.db.migrations import alembic_config
    from app.db.models import Role
    from app.db.session import get_engine, get_sessionmaker
    from app.main import create_app
    from app.services.users import new_user

    config = alembic_config()
    config.attributes["skip_logging"] = True
    command.upgrade(config, "head")
    engine = get_engine()

    password = secrets.token_urlsafe(16)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with get_sessionmaker()() as session:
        user = new_user(
            session, role=Role.COURIER, name="Bench", email=email, phone=None, password=password
        )
        session.commit()
        user_id = user.id

    phases: list[Phase] = []
    insert_seconds: list[float] = []
    with TestClient(create_app()) as client:
        login = client.post("/v1/auth/login", json={"identifier": email, "password": password})
        login.raise_for_status()
        refresher = Refresher(client, login.json()["refresh_token"])
        phases.append(refresher.phase(engine, label="1 session", requests=requests, prune=True))
        for count in session_counts:
            insert_seconds.append(bulk_insert_sessions(engine, user_id=user_id, count=count))
            label = f"+{count:,} sessions"
            phases.append(refresher.phase(engine, label=label, requests=requests))
        plans = explain(engine, captured_statements(engine, refresher))
    version = server_version(engine)
    engine.dispose()

    return {
        "database": version,
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "requests_per_phase": requests,
        "warmup_per_phase": WARMUP,
        "bulk_insert_seconds": [round(s, 2) for s in insert_seconds],
        "phases": [asdict(p) for p in phases],
        "ratios": [round(p.median_ms / phases[0].median_ms, 2) for p in phases[1:]],
        "best_block_ratios": [
            round(p.best_block_ms / phases[0].best_block_ms, 2) for p in phases[1:]
        ],
        "plans": plans,
    }


def report(result: dict[str, Any]) -> str:
    phases = result["phases"]
    lines = [
        f"refresh benchmark: {result['database']}; {result['machine']}",
        f"{result['requests_per_phase']} timed refreshes per phase "
        f"(after {result['warmup_per_phase']} warm-up), POST /v1/auth/refresh via TestClient",
        "",
        f"{'phase':<20}{'session rows':>22}{'median ms':>11}{'best-50 ms':>12}{'p90 ms':>9}"
        f"{'min ms':>9}{'scan ms*':>10}",
    ]
    for p in phases:
        rows = f"{p['rows_before']:,} -> {p['rows_after']:,}"
        lines.append(
            f"{p['label']:<20}{rows:>22}{p['median_ms']:>11.2f}{p['best_block_ms']:>12.2f}"
            f"{p['p90_ms']:>9.2f}{p['min_ms']:>9.2f}{p['scan_ms']:>10.2f}"
        )
    lines += [
        f"best-50: the lowest median of the phase's blocks of {BLOCK} consecutive refreshes",
        "* control: median of one unindexed lookup (by token_hash), i.e. what a scan costs",
        "",
    ]
    ratios = zip(phases[1:], result["ratios"], result["best_block_ratios"], strict=True)
    for p, ratio, best_ratio in ratios:
        lines.append(
            f"ratio {p['label']} / {phases[0]['label']}: "
            f"median {ratio:.2f}, best-50 {best_ratio:.2f}"
        )
    lines += [f"bulk insert took {result['bulk_insert_seconds']} s", ""]
    lines.append("plans of the statements one refresh sends for user_sessions:")
    for statement, plan in result["plans"]:
        lines.append(f"  {statement}")
        lines.extend(f"      {line}" for line in plan)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="timed refreshes per phase")
    parser.add_argument(
        "--sessions",
        type=int,
        nargs="+",
        default=[10_000],
        help="session rows to add before each further phase (cumulative)",
    )
    args = parser.parse_args()
    with scratch_database(os.environ.get("BENCH_DATABASE_URL")) as url:
        result = run(url, requests=args.requests, session_counts=args.sessions)
    print(report(result))
    RESULTS_DIR.mkdir(exist_ok=True)
    backend = "sqlite" if result["database"].startswith("SQLite") else "postgres"
    out = RESULTS_DIR / f"refresh_{backend}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
