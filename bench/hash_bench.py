"""Benchmark: peak memory and latency of bursts of password hashes, by PASSWORD_HASH_CONCURRENCY.

    .venv/bin/python -m bench.hash_bench                 # caps 1, 2, 4 and 1000 ("off")
    .venv/bin/python -m bench.hash_bench --caps 2 --burst 40 --wait 60   # queue instead of 503

For each cap and each kind of burst, a fresh `zariz serve` (one process, SQLite in a temp dir,
production Argon2id parameters: time cost 3, 64 MiB, parallelism 4) is started, warmed up with
one login (which also makes the dummy hash), and sent --burst requests at once from as many
threads released by a barrier: unknown-user logins (each verifies against the dummy hash) or
sign-ups (each hashes a new password). Reported: the process's RSS before the burst, its peak
RSS (VmHWM from /proc, the kernel's own high-water mark, so no sampling can miss a peak), the
status codes, and p50/p95 latency of all requests and of those served (not 503). Rate limits are
raised out of the way; the wait for a hash slot is --wait (PASSWORD_HASH_WAIT_SECONDS, default 5
as in production), so what does not get a slot in time is a 503 and is counted.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.servers import Server, rss_mb, start

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ZARIZ = str(Path(sys.executable).with_name("zariz"))
OFF = 1000  # a cap no burst reaches: effectively no cap


@dataclass
class Row:
    cap: int
    kind: str
    burst: int
    rss_before_mb: float
    peak_rss_mb: float
    codes: dict[str, int]
    wait_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    served_p50_ms: float | None
    served_p95_ms: float | None


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[int(q * (len(ordered) - 1))], 1)


def env_for(db_url: str, cap: int, wait: float) -> dict[str, str]:
    return {
        "ZARIZ_ENV": "development",
        "DATABASE_URL": db_url,
        "ARGON2_TIME_COST": "3",
        "ARGON2_MEMORY_COST": "65536",
        "ARGON2_PARALLELISM": "4",
        "PASSWORD_HASH_CONCURRENCY": str(cap),
        "PASSWORD_HASH_WAIT_SECONDS": str(wait),
        "PUSH_WORKER": "off",
        "RATE_LIMIT_STORAGE": "memory://",
        "LOGIN_LIMIT_PER_CLIENT": "100000/minute",
        "LOGIN_LIMIT_PER_IDENTIFIER_CLIENT": "100000/minute",
        "LOGIN_LIMIT_PER_IDENTIFIER": "100000/minute",
        "REGISTER_LIMIT_PER_CLIENT": "100000/minute",
        "LOG_LEVEL": "WARNING",
    }


def burst(server: Server, kind: str, n: int) -> tuple[list[tuple[int, float]], dict[str, int]]:
    barrier = threading.Barrier(n)
    latencies: list[tuple[int, float]] = []
    codes: dict[str, int] = {}
    lock = threading.Lock()
    run = uuid.uuid4().hex[:8]

    def one(i: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            barrier.wait()
            started = time.perf_counter()
            if kind == "login":
                r = http.post(
                    "/v1/auth/login",
                    json={"identifier": f"nobody{i}-{run}@example.com", "password": "wrong pw 1"},
                )
            else:
                r = http.post(
                    "/v1/auth/register",
                    json={
                        "name": f"Courier {i}",
                        "email": f"c{i}-{run}@example.com",
                        "password": "long enough password",
                    },
                )
            elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append((r.status_code, elapsed))
            codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, codes


def measure(tmp: Path, cap: int, kind: str, n: int, wait: float) -> Row:
    db = tmp / f"hash-{cap}-{kind}.db"
    env = env_for(f"sqlite:///{db}", cap, wait)
    subprocess.run([ZARIZ, "migrate"], env={**os.environ, **env}, check=True, capture_output=True)
    server = start(f"cap{cap}-{kind}", [ZARIZ, "serve"], env, tmp / f"{cap}-{kind}.log", workers=1)
    try:
        pid = server.workers()[0]
        warm = httpx.post(
            f"{server.base_url}/v1/auth/login",
            json={"identifier": "warmup@example.com", "password": "x"},
            timeout=60,
        )
        assert warm.status_code == 401, warm.text
        before = rss_mb(pid)
        latencies, codes = burst(server, kind, n)
        peak = peak_rss_mb(pid)
    finally:
        server.stop()
    every = [ms for _, ms in latencies]
    served = [ms for code, ms in latencies if code != 503]
    return Row(
        cap=cap,
        kind=kind,
        burst=n,
        rss_before_mb=round(before, 1),
        peak_rss_mb=round(peak, 1),
        codes=codes,
        wait_s=wait,
        p50_ms=round(statistics.median(every), 1),
        p95_ms=pct(every, 0.95),
        max_ms=round(max(every), 1),
        served_p50_ms=round(statistics.median(served), 1) if served else None,
        served_p95_ms=pct(served, 0.95) if served else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 2, 4, OFF])
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--wait", type=float, default=5.0, help="PASSWORD_HASH_WAIT_SECONDS")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zariz-hash-bench-"))
    rows: list[Row] = []
    try:
        for cap in args.caps:
            for kind in ("login", "register"):
                row = measure(tmp, cap, kind, args.burst, args.wait)
                rows.append(row)
                print(json.dumps(asdict(row)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(
        f"| cap | burst of {args.burst} | RSS before | peak RSS | answers | p50 ms | p95 ms "
        "| served p50 ms | served p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cap = "off" if r.cap >= OFF else str(r.cap)
        kind = "unknown-user logins" if r.kind == "login" else "sign-ups"
        answers = ", ".join(f"{n}× {code}" for code, n in sorted(r.codes.items()))
        print(
            f"| {cap} | {kind} | {r.rss_before_mb:.0f} MiB | {r.peak_rss_mb:.0f} MiB | "
            f"{answers} | {r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.served_p50_ms or 0:.0f} "
            f"| {r.served_p95_ms or 0:.0f} |"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"hash_bench_wait{args.wait:g}.json").write_text(
        json.dumps([asdict(r) for r in rows], indent=2)
    )


if __name__ == "__main__":
    main()
