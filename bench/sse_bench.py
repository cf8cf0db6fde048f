"""Benchmark: SSE fan-out to N streams on a real uvicorn: delivery latency, memory per stream.

    python -m bench.sse_bench                                   # scratch SQLite file
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_sse \\
        python -m bench.sse_bench                               # creates and drops bench_sse
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test_sse \\
        python -m bench.sse_bench --schema sse_bench            # a scratch schema in an existing db

One uvicorn process serves --subscribers streams (admins, store users and couriers, all of whom
see every event) opened over raw sockets by one asyncio client. Then --events orders are created
at --rate per second and every stream must receive every event once, in id order.

Where events come from (--via):
- `db` (default on Postgres): this process commits each order and its event itself, so the server
  hears of it through NOTIFY, the path between API processes. Latency is measured from the moment
  commit() returned to the moment a stream's bytes arrived: commit → received, exactly.
- `api` (default, and the only way, on SQLite, whose bus is in-process): POST /v1/orders to the
  server. Latency is measured from the start of that request, so it also counts the request's own
  handling before commit: an upper bound of commit → received.

Memory per stream is the server's RSS growth while the streams were opened, divided by N.
Results are printed and written to bench/results/.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.refresh_bench import scratch_database

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
PASSWORD = "bench-password-1"
FRAME = re.compile(rb'(?:^|\n)id: (\d+)\ndata: \{"type":"[^"]*","event_id":\d+,"order_id":(\d+)')


@contextmanager
def scratch_schema(url: str, schema: str) -> Iterator[str]:
    """A fresh schema in an existing Postgres database, dropped at the end."""
    if not schema.replace("_", "").isalnum():
        raise SystemExit("--schema: letters, digits and _ only")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}):
            raise SystemExit(f"schema {schema} exists; the bench only uses one it creates")
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def configure_environment(database_url: str) -> None:
    # Settings are read once, on first import of the app; the server process inherits them.
    os.environ.update(
        {
            "ZARIZ_ENV": "development",
            "DATABASE_URL": database_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_COST": "1024",
            "ARGON2_PARALLELISM": "1",
            "PUSH_WORKER": "off",
            "RATE_LIMIT_STORAGE": "memory://",
            "LOGIN_LIMIT_PER_CLIENT": "1000/minute",
            "LOG_LEVEL": "WARNING",
            # 1,000 streams over 15 logins: the per-user stream cap is not what this measures.
            "SSE_MAX_STREAMS_PER_USER": "1000",
            # Modest pools: a shared Postgres has other users.
            "THREADPOOL_SIZE": "10",
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
        }
    )
    os.environ.pop("DATABASE_URL_DIRECT", None)


def migrate_and_seed(url: str, *, users_per_role: int) -> dict[str, Any]:
    from alembic import command

    from app.db.migrations import alembic_config
    from app.db.models import Role, Store, StoreMembership, StoreRole
    from app.db.session import build_engine
    from app.services.users import new_user

    engine = build_engine(url)
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        config.attributes["skip_logging"] = True
        command.upgrade(config, "head")
        conn.commit()
    from sqlalchemy.orm import Session

    logins: dict[str, list[str]] = {"admin": [], "store": [], "courier": []}
    with Session(engine, expire_on_commit=False) as session:
        store = Store(name="Bench store", pickup_address="Herzl 1", status="active")
        session.add(store)
        session.flush()
        for role, key in ((Role.ADMIN, "admin"), (Role.STORE, "store"), (Role.COURIER, "courier")):
            for n in range(users_per_role):
                email = f"{key}{n}@bench.example"
                user = new_user(
                    session,
                    role=role,
                    name=f"{key} {n}",
                    email=email,
                    phone=None,
                    password=PASSWORD,
                )
                if role == Role.STORE:
                    session.add(
                        StoreMembership(
                            user_id=user.id, store_id=store.id, role_in_store=StoreRole.STAFF
                        )
                    )
                logins[key].append(email)
        session.commit()
        store_id = store.id
    engine.dispose()
    return {"store_id": store_id, "logins": logins}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@dataclass
class Stream:
    token: str
    received: dict[int, float] = field(default_factory=dict)  # order id -> arrival time
    event_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    bytes_read: int = 0
    writer: asyncio.StreamWriter | None = None


async def open_stream(port: int, stream: Stream) -> asyncio.Task[None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "GET /v1/events/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {stream.token}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"stream refused: {head[:200]!r}")
    buffer = b""
    while b"retry:" not in buffer:  # sent once the stream is subscribed
        chunk = await reader.read(65536)
        if not chunk:
            raise SystemExit("stream closed before it was subscribed")
        buffer += chunk
    stream.writer = writer
    return asyncio.create_task(read_stream(reader, stream))


async def read_stream(reader: asyncio.StreamReader, stream: Stream) -> None:
    buffer = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return
        now = time.time()
        stream.bytes_read += len(chunk)
        buffer += chunk
        blocks = buffer.split(b"\n\n")
        buffer = blocks.pop()
        for block in blocks:
            match = FRAME.search(block)
            if match is None:
                continue  # heartbeat, chunk framing
            event_id, order_id = int(match.group(1)), int(match.group(2))
            if order_id in stream.received:
                stream.duplicates += 1
                continue
            stream.received[order_id] = now
            stream.event_ids.append(event_id)


def commit_order(store_id: int) -> tuple[int, float]:
    """Commits an order and its event in this process; returns (order id, when commit returned)."""
    from sqlalchemy.orm import Session

    from app.db.models import EventType, Order
    from app.db.session import get_engine
    from app.services.events import record_event

    with Session(get_engine(), expire_on_commit=False) as session:
        order = Order(
            store_id=store_id,
            status="new",
            pickup_address="Herzl 1",
            delivery_address="Dizengoff 100",
            recipient_first_name="Noa",
            recipient_last_name="Levi",
            phone="+972501234567",
            street="Dizengoff",
            building_no="100",
            boxes_count=1,
            boxes_multiplier=1,
            price_total=35,
        )
        session.add(order)
        session.flush()
        record_event(
            session,
            order=order,
            type=EventType.CREATED,
            actor=None,
            before=None,
        )
        session.commit()
        return order.id, time.time()


def post_order(client: httpx.Client, token: str) -> tuple[int, float]:
    started = time.time()
    response = client.post(
        "/v1/orders",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "recipient_first_name": "Noa",
            "recipient_last_name": "Levi",
            "phone": "+972501234567",
            "street": "Dizengoff",
            "building_no": "100",
        },
    )
    response.raise_for_status()
    return int(response.json()["id"]), started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, *, port: int, pid: int, seed: dict[str, Any]) -> dict:  # type: ignore[type-arg]
    base = f"http://127.0.0.1:{port}"
    tokens: dict[str, list[str]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for role, identifiers in seed["logins"].items():
            tokens[role] = []
            for identifier in identifiers:
                response = client.post(
                    "/v1/auth/login", json={"identifier": identifier, "password": PASSWORD}
                )
                response.raise_for_status()
                tokens[role].append(response.json()["access_token"])
        # Warm up: one stream opened and closed, so the hub and its imports are in place.
        warm = Stream(tokens["admin"][0])
        task = await open_stream(port, warm)
        task.cancel()
        assert warm.writer is not None
        warm.writer.close()
        await asyncio.sleep(1)
        rss_before = rss_kb(pid)

        # 10% admins, 45% store users, 45% couriers: all of them see every created order.
        roles = ["admin"] + ["store"] * 9 + ["courier"] * 9 + ["admin"]
        streams = [
            Stream(tokens[role][i % len(tokens[role])])
            for i, role in ((i, roles[i % len(roles)]) for i in range(args.subscribers))
        ]
        started = time.monotonic()
        readers: list[asyncio.Task[None]] = []
        for offset in range(0, len(streams), 100):
            batch = streams[offset : offset + 100]
            readers += await asyncio.gather(*(open_stream(port, s) for s in batch))
        connect_seconds = time.monotonic() - started
        await asyncio.sleep(2)
        rss_open = rss_kb(pid)

        sent: dict[int, float] = {}
        cpu_before, client_before = cpu_seconds(pid), time.process_time()
        for _ in range(args.events):
            if args.via == "db":
                order_id, at = await asyncio.to_thread(commit_order, seed["store_id"])
            else:
                order_id, at = await asyncio.to_thread(post_order, client, tokens["store"][0])
            sent[order_id] = at
            await asyncio.sleep(1 / args.rate)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(s.received) < len(sent) for s in streams):
            await asyncio.sleep(0.2)
        # The server's CPU for the events (fan-out, rendering, writing; the idle heartbeats too).
        cpu_per_event = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, len(sent))
        # This client's own CPU (reading 1,000 sockets, committing): it shares the cores.
        client_per_event = (time.process_time() - client_before) * 1000 / max(1, len(sent))
        rss_after = rss_kb(pid)
        for task in readers:
            task.cancel()
        for s in streams:
            if s.writer is not None:
                s.writer.close()

    latencies = [
        (at - sent[order_id]) * 1000
        for s in streams
        for order_id, at in s.received.items()
        if order_id in sent
    ]
    expected = len(sent) * len(streams)
    # Per event: the first stream to get it (the hub's pipeline: wake-up, read, render) and the
    # last one (plus writing to every stream).
    first, last = [], []
    for order_id, at in sent.items():
        arrivals = [s.received[order_id] for s in streams if order_id in s.received]
        if arrivals:
            first.append((min(arrivals) - at) * 1000)
            last.append((max(arrivals) - at) * 1000)
    return {
        "subscribers": len(streams),
        "events": len(sent),
        "via": args.via,
        "expected": expected,
        "received": len(latencies),
        "lost": expected - len(latencies),
        "duplicates": sum(s.duplicates for s in streams),
        "out_of_order": sum(s.event_ids != sorted(s.event_ids) for s in streams),
        "connect_seconds": round(connect_seconds, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "first_delivery_ms": {
            "p50": round(percentile(first, 0.5), 1),
            "p95": round(percentile(first, 0.95), 1),
        },
        "last_delivery_ms": {
            "p50": round(percentile(last, 0.5), 1),
            "p95": round(percentile(last, 0.95), 1),
        },
        "rss_kb": {"before": rss_before, "open": rss_open, "after": rss_after},
        "kb_per_stream": round((rss_open - rss_before) / len(streams), 1),
        "server_cpu_ms_per_event": round(cpu_per_event, 1),
        "client_cpu_ms_per_event": round(client_per_event, 1),
        "bytes_per_delivery": round(sum(s.bytes_read for s in streams) / max(1, len(latencies))),
    }


def print_table(result: dict[str, Any], database: str) -> None:
    lat = result["latency_ms"]
    rss = result["rss_kb"]
    source = "commits in another process (NOTIFY)" if result["via"] == "db" else "POST /v1/orders"
    rows = [
        ("database", database),
        ("events from", source),
        ("streams", f"{result['subscribers']} (opened in {result['connect_seconds']} s)"),
        ("events", str(result["events"])),
        (
            "deliveries",
            f"{result['received']} of {result['expected']}: lost {result['lost']}, "
            f"duplicated {result['duplicates']}, streams out of order {result['out_of_order']}",
        ),
        (
            "latency ms",
            f"p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}",
        ),
        (
            "per event ms",
            f"first stream p50 {result['first_delivery_ms']['p50']} "
            f"p95 {result['first_delivery_ms']['p95']}; last stream p50 "
            f"{result['last_delivery_ms']['p50']} p95 {result['last_delivery_ms']['p95']}",
        ),
        (
            "server RSS MB",
            f"idle {rss['before'] / 1024:.1f}, streams open {rss['open'] / 1024:.1f}, "
            f"after events {rss['after'] / 1024:.1f}",
        ),
        ("memory per stream", f"{result['kb_per_stream']} KB"),
        (
            "CPU per event",
            f"server {result['server_cpu_ms_per_event']} ms, "
            f"this client {result['client_cpu_ms_per_event']} ms",
        ),
        ("bytes per delivery", f"{result['bytes_per_delivery']} (chunk framing included)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    parser.add_argument("--via", choices=["db", "api"], default=None)
    parser.add_argument("--schema", help="use a scratch schema in an existing Postgres database")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    postgres = bool(url) and make_url(url or "").get_backend_name() == "postgresql"
    args.via = args.via or ("db" if postgres else "api")
    if args.via == "db" and not postgres:
        raise SystemExit("--via db needs Postgres (SQLite's bus does not cross processes)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.subscribers)), hard))

    scratch = scratch_schema(url, args.schema) if args.schema and url else scratch_database(url)
    with scratch as database_url:
        configure_environment(database_url)
        seed = migrate_and_seed(database_url, users_per_role=5)
        port = free_port()
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        log_path = RESULTS_DIR / f"sse-server-{port}.log"
        server = start_server(port, log_path)
        try:
            result = asyncio.run(run(args, port=port, pid=server.pid, seed=seed))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(15)
    database = "PostgreSQL" if postgres else "SQLite"
    print(f"SSE fan-out, one uvicorn process, {platform.machine()} {os.cpu_count()} CPUs")
    print_table(result, database)
    out = RESULTS_DIR / f"sse-{database.lower()}-{int(time.time())}.json"
    out.write_text(json.dumps({"database": database, **result, "args": vars(args)}, indent=2))
    print(f"  raw results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
