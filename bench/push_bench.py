"""Benchmark: event committed → APNs request latency, and pushes per second, against the fake APNs.

    python -m bench.push_bench                           # scratch SQLite file, worker thread
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_push \\
        python -m bench.push_bench                       # Postgres, `zariz worker` process

The database BENCH_DATABASE_URL names must not exist: the bench creates it, migrates it, and
drops it at the end. A store user (the actor) and --devices couriers, each with one device, are
created; the push worker runs as production runs it (a thread of this process on SQLite, as
PUSH_WORKER=inline; a separate `zariz worker` process woken by NOTIFY on Postgres). The local
fake APNs (tests/fake_apns.py, HTTP/2 over h2c on a free loopback port) answers 200 at once and
stamps each request's arrival.

1. Latency: --events order.created events, one transaction each, at --rate per second; each
   reaches every courier. Latency = fake's arrival stamp − the producer's clock right after its
   commit returned (one machine, one clock).
2. Throughput: --burst events committed in one transaction; pushes per second = their pushes /
   (last arrival − commit).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.refresh_bench import RESULTS_DIR, scratch_database
from tests.fake_apns import KEY_ID, TEAM_ID, TOPIC, FakeApns, new_signing_key

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    database: str
    worker: str
    devices: int
    events: int
    rate: float
    pushes: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    burst_events: int
    burst_pushes: int
    burst_seconds: float
    pushes_per_second: float
    # CPU the worker process spent per push in the burst (process mode; Linux /proc).
    worker_cpu_ms_per_push: float | None


def configure_environment(database_url: str, pem: str, apns_url: str) -> dict[str, str]:
    # Settings are read once, on first import of the app: set them before that.
    env = {
        "ZARIZ_ENV": "development",
        "DATABASE_URL": database_url,
        "JWT_SECRET": "bench-" + "x" * 40,
        "PUSH_WORKER": "off",
        "APNS_KEY": pem,
        "APNS_KEY_ID": KEY_ID,
        "APNS_TEAM_ID": TEAM_ID,
        "APNS_TOPIC": TOPIC,
        "APNS_URL": apns_url,
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    os.environ.pop("DATABASE_URL_DIRECT", None)
    return env


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime (fields 14 and 15 of stat; 12 and 13 after the command name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(args: argparse.Namespace, database_url: str, stack: ExitStack) -> Result:
    pem, public = new_signing_key()
    fake = FakeApns(public).start()
    env = configure_environment(database_url, pem, fake.url)

    from alembic import command

    from app.core.config import get_settings
    from app.db.migrations import alembic_config
    from app.db.models import Device, EventType
    from app.db.session import get_engine, get_sessionmaker
    from app.push.worker import PushWorker
    from app.services.events import record_event
    from tests.builders import make_order, make_store, make_store_user, make_user
    from tests.push.helpers import principal

    command.upgrade(alembic_config(), "head")
    sessions = get_sessionmaker()
    with sessions() as session:
        store = make_store(session)
        actor = principal(session, make_store_user(session, store=store))
        for n in range(args.devices):
            courier = make_user(session)
            session.add(Device(user_id=courier.id, token=f"{n:064x}"))
        session.commit()

    is_postgres = database_url.startswith("postgresql")
    mode = args.worker or ("process" if is_postgres else "thread")
    worker: PushWorker | None = None
    proc: subprocess.Popen[bytes] | None = None
    RESULTS_DIR.mkdir(exist_ok=True)
    log = stack.enter_context((RESULTS_DIR / "push-worker.log").open("wb"))
    if mode == "thread":
        worker = PushWorker(settings=get_settings(), engine=get_engine())
        worker.start()
    else:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    time.sleep(2.0)  # the worker is up and idle, listening

    def emit(count: int) -> tuple[list[int], float]:
        with sessions() as session:
            orders = [make_order(session, store=store) for _ in range(count)]
            for order in orders:
                record_event(
                    session,
                    order=order,
                    type=EventType.CREATED,
                    actor=actor,
                    before=None,
                )
            session.commit()
            return [o.id for o in orders], time.time()

    try:
        committed: dict[int, float] = {}
        for _ in range(args.events):
            started = time.monotonic()
            ids, at = emit(1)
            committed[ids[0]] = at
            time.sleep(max(0.0, 1 / args.rate - (time.monotonic() - started)))
        pushes = args.events * args.devices
        seen = fake.wait_for_requests(pushes, timeout=120)
        latencies = [(s.received_at - committed[s.payload["order_id"]]) * 1000 for s in seen]

        fake.reset()
        cpu_before = cpu_seconds(proc.pid) if proc is not None else None
        _, burst_at = emit(args.burst)
        burst_pushes = args.burst * args.devices
        burst = fake.wait_for_requests(burst_pushes, timeout=300)
        burst_seconds = max(s.received_at for s in burst) - burst_at
        # Let the worker record the last outcomes before reading its CPU time.
        time.sleep(1.0)
        cpu_after = cpu_seconds(proc.pid) if proc is not None else None
        cpu_per_push = (
            round((cpu_after - cpu_before) * 1000 / burst_pushes, 2)
            if cpu_before is not None and cpu_after is not None
            else None
        )
    finally:
        if worker is not None:
            worker.stop()
            worker.join(30)
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        fake.stop()
        get_engine().dispose()

    return Result(
        database="Postgres" if is_postgres else "SQLite",
        worker=mode,
        devices=args.devices,
        events=args.events,
        rate=args.rate,
        pushes=len(latencies),
        p50_ms=round(statistics.median(latencies), 1),
        p95_ms=round(percentile(latencies, 0.95), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies), 1),
        burst_events=args.burst,
        burst_pushes=burst_pushes,
        burst_seconds=round(burst_seconds, 2),
        pushes_per_second=round(burst_pushes / burst_seconds),
        worker_cpu_ms_per_push=cpu_per_push,
    )


def print_table(result: Result) -> None:
    print(
        f"\n{result.database}, worker {result.worker}: {result.events} events × "
        f"{result.devices} devices at {result.rate:g} events/s\n"
    )
    print(
        "| pushes | p50 ms | p95 ms | p99 ms | max ms | burst pushes | seconds | pushes/s "
        "| worker CPU ms/push |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    cpu = "–" if result.worker_cpu_ms_per_push is None else result.worker_cpu_ms_per_push
    print(
        f"| {result.pushes} | {result.p50_ms} | {result.p95_ms} | {result.p99_ms} | "
        f"{result.max_ms} | {result.burst_pushes} | {result.burst_seconds} | "
        f"{result.pushes_per_second} | {cpu} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    parser.add_argument("--burst", type=int, default=100, help="events in the throughput burst")
    parser.add_argument("--worker", choices=("thread", "process"))
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(scratch_database(os.environ.get("BENCH_DATABASE_URL")))
        result = run(args, url, stack)
    print_table(result)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    record: dict[str, Any] = {
        **asdict(result),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    (RESULTS_DIR / f"push-{stamp}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
