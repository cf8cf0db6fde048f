"""Benchmark: clients that never read a large CSV export, and the requests of everyone else.

    python -m bench.slow_reader_bench                      # scratch SQLite file
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_slow \\
        python -m bench.slow_reader_bench                  # creates and drops that database

A real uvicorn serves the app on a scratch database holding --orders wide orders (a CSV of
about 1.5 KB a row: larger than the socket buffers, so a client that does not read stalls the
server's writes). The bench times --requests authenticated `GET /v1/orders?limit=20` and
`/health/ready` with no export open, then opens --readers sockets, each asking for the whole
export as a different admin (so the per-user export cap refuses none), reads the status line
and never reads again, and times the same requests with all of them open. It reports p50/p95/
max latency, how many exports started (200) and the server's RSS before and after.
"""

import argparse
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.refresh_bench import scratch_database
from bench.servers import Server, cpu_seconds, start

NOTE = "Ring twice; the intercom is broken. " * 40


def environment(database_url: str) -> dict[str, str]:
    return {
        "ZARIZ_ENV": "development",
        "DATABASE_URL": database_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "PUSH_WORKER": "off",
        "RATE_LIMIT_STORAGE": "memory://",
        "LOG_LEVEL": "WARNING",
        # Seeding hashes a password per user; nothing in the measured part does.
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "1024",
        "ARGON2_PARALLELISM": "1",
    }


def seed(env: dict[str, str], *, orders: int, users: int) -> list[str]:
    """Migrates the scratch database, adds the orders and users; returns one token per user."""
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True)
    os.environ.update(env)  # settings are read on first import of the app: after this line
    from app.db.models import Order, Role, Store, UserStatus
    from app.db.session import get_sessionmaker
    from app.services.auth import _issue
    from app.services.users import new_user

    tokens = []
    with get_sessionmaker()() as session:
        store = Store(name="Bench store", pickup_address="Herzl 1, Tel Aviv", status="active")
        session.add(store)
        session.flush()
        session.add_all(
            Order(
                store_id=store.id,
                status="new",
                pickup_address=store.pickup_address,
                delivery_address=f"Dizengoff {n}, 3, 12, Tel Aviv",
                recipient_first_name="Noa",
                recipient_last_name=f"Levi {n}",
                phone="+972501234567",
                street="Dizengoff",
                building_no=str(n),
                boxes_count=1,
                boxes_multiplier=1,
                price_total=35,
                notes=NOTE,
            )
            for n in range(orders)
        )
        for n in range(users):
            user = new_user(
                session,
                role=Role.ADMIN,
                name=f"Admin {n}",
                email=f"admin{n}@bench.example",
                phone=None,
                password=secrets.token_urlsafe(16),
                status=UserStatus.ACTIVE,
            )
            session.flush()
            issued = _issue(session, user=user, family_id=None, user_agent="bench")
            tokens.append(issued.access_token)
        session.commit()
    return tokens


def timings(server: Server, token: str, requests: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    orders_ms: list[float] = []
    ready_ms: list[float] = []
    failures = 0
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for _ in range(requests):
            for path, params, out in (
                ("/v1/orders", {"limit": 20}, orders_ms),
                ("/health/ready", {}, ready_ms),
            ):
                started = time.perf_counter()
                try:
                    ok = http.get(path, params=params, headers=headers).status_code == 200
                except httpx.HTTPError:
                    ok = False
                out.append((time.perf_counter() - started) * 1000)
                failures += not ok
    return {
        "orders_p50_ms": round(statistics.median(orders_ms), 1),
        "orders_p95_ms": round(statistics.quantiles(orders_ms, n=20)[18], 1),
        "orders_max_ms": round(max(orders_ms), 1),
        "ready_p50_ms": round(statistics.median(ready_ms), 1),
        "ready_max_ms": round(max(ready_ms), 1),
        "failures": failures,
    }


def open_readers(server: Server, tokens: list[str]) -> tuple[list[socket.socket], int]:
    sockets, started = [], 0
    for token in tokens:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(
            b"GET /v1/orders/export.csv HTTP/1.1\r\nHost: bench\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
        )
        sockets.append(sock)
    for sock in sockets:
        with contextlib.suppress(TimeoutError):
            started += sock.recv(12) == b"HTTP/1.1 200"
    return sockets, started


def settle(pid: int, timeout: float = 120) -> float:
    """Waits until the server is idle (the exports have filled the sockets and stalled)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        cpu = cpu_seconds(pid)
        time.sleep(1)
        if cpu_seconds(pid) - cpu < 0.05:
            break
    return round(time.monotonic() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=85)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with scratch_database(os.environ.get("BENCH_DATABASE_URL")) as url:
        env = environment(url)
        tokens = seed(env, orders=args.orders, users=args.readers + 1)
        log = Path(tempfile.mkdtemp(prefix="zariz-bench-")) / "server.log"
        argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
        server = start("api", [*argv, "--no-access-log"], env, log, workers=1)
        try:
            (pid,) = server.rss()
            before = {**timings(server, tokens[-1], args.requests), "rss_mb": server.rss()[pid]}
            sockets, started = open_readers(server, tokens[: args.readers])
            during = {**timings(server, tokens[-1], args.requests), "rss_mb": server.rss()[pid]}
            settled_after = settle(pid)
            stalled = {**timings(server, tokens[-1], args.requests), "rss_mb": server.rss()[pid]}
            for sock in sockets:
                sock.close()
        finally:
            server.stop()
    result = {
        "database": url.split(":", 1)[0],
        "readers": args.readers,
        "exports_started": started,
        "orders": args.orders,
        "before": before,
        "while_exports_fill_buffers": during,
        "settled_after_s": settled_after,
        "with_stalled_readers": stalled,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
