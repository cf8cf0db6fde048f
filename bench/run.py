"""`make bench`: Zariz on Postgres against the reference ceiling, one scenario after another.

    python -m bench.run [--quick] [--profile SECONDS] [--keep-db] [--workers N]

BENCH_ADMIN_URL names a Postgres server to create the scratch database on (default: the local
one as user postgres). The summary goes to stdout and bench/results/latest.md.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from bench import costs, dataset, scenarios, servers
from bench.explain_orders import explain
from bench.loadgen import Req, Result, closed_loop_python, closed_loop_wrk, open_loop, wrk_path
from bench.profile import profile_worker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
JWT_SECRET = "bench-secret-" + "x" * 40
WORKERS = 2


@dataclass
class Plan:
    # 10,000 couriers polling every 30 s.
    open_rate: float = 333.0
    open_seconds: float = 20.0
    sat_seconds: float = 10.0
    sat_rounds: int = 3
    sat_connections: int = 64
    poll_limit: int = 20
    dashboard_seconds: float = 12.0
    storm_rounds: int = 3
    storm_couriers: int = 1000
    storm_orders: int = 200
    create_seconds: float = 12.0
    cost_requests: int = 400
    whole_list_seconds: float = 10.0

    @classmethod
    def quick(cls) -> "Plan":
        return cls(
            open_seconds=5,
            sat_seconds=4,
            sat_rounds=1,
            dashboard_seconds=4,
            storm_rounds=1,
            create_seconds=4,
            cost_requests=150,
            whole_list_seconds=4,
        )


@dataclass
class Row:
    scenario: str
    target: str
    tool: str
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    requests: int
    ratio: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    cpu: list[costs.Cost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def add(self, scenario: str, target: str, r: Result, ratio: str = "", note: str = "") -> Row:
        row = Row(
            scenario,
            target,
            r.tool,
            r.rps,
            r.pct(50),
            r.pct(95),
            r.pct(99),
            r.errors,
            r.requests,
            ratio,
            note,
        )
        self.rows.append(row)
        print(
            f"  {scenario:34} {target:9} {row.rps:8.0f} req/s  p50 {row.p50:7.1f}  "
            f"p95 {row.p95:7.1f}  p99 {row.p99:7.1f} ms  "
            f"errors {row.errors}/{row.requests} {ratio} {note}",
            flush=True,
        )
        return row

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.notes.append(text)

    def check(self, text: str) -> None:
        print(f"  check: {text}", flush=True)
        self.checks.append(text)

    def markdown(self) -> str:
        lines = [
            "| scenario | server | load tool | req/s | p50 ms | p95 ms | p99 ms | errors "
            "| vs ceiling | note |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.scenario} | {r.target} | {r.tool} | {r.rps:.0f} | {r.p50:.1f} "
                f"| {r.p95:.1f} | {r.p99:.1f} | {r.errors}/{r.requests} | {r.ratio} | {r.note} |"
            )
        out = "\n".join(lines)
        if self.cpu:
            out += (
                "\n\nCPU per request (API processes' CPU / sequential requests on one "
                "keep-alive connection; median of 3 blocks):\n\n"
                "| request | server | status | CPU ms | blocks |\n|---|---|---:|---:|---|\n"
            )
            out += "\n".join(
                f"| {c.name} | {c.target} | {c.status} | {c.ms:.2f} | "
                f"{', '.join(f'{b:.2f}' for b in c.blocks)} |"
                for c in self.cpu
            )
        if self.checks:
            out += "\n\nChecks:\n" + "\n".join(f"- {c}" for c in self.checks)
        if self.notes:
            out += "\n\nNotes:\n" + "\n".join(f"- {n}" for n in self.notes)
        return out + "\n"


class RssWatch:
    """Samples the resident memory of each server worker every half second; keeps the peak."""

    def __init__(self, watched: Sequence[servers.Server]) -> None:
        self.watched = watched
        self.peak: dict[str, float] = {s.name: 0.0 for s in watched}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for server in self.watched:
                for mb in server.rss().values():
                    self.peak[server.name] = max(self.peak[server.name], mb)

    def __enter__(self) -> "RssWatch":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_of(server: servers.Server) -> str:
    return " / ".join(f"{mb:.0f}" for mb in server.rss().values())


def warm(base_url: str, requests: Sequence[Req], n: int = 200) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for req in requests[:n]:
            http.request(req.method, req.path, headers=req.headers)


def cpu_of(server: servers.Server) -> float:
    return sum(servers.cpu_seconds(pid) for pid in server.workers())


def saturate(
    wrk: str | None, server: servers.Server, name: str, requests: Sequence[Req], plan: Plan
) -> tuple[Result, float]:
    """Closed loop; returns the result and the servers' CPU use in cores over the run."""
    cpu0, t0 = cpu_of(server), time.monotonic()
    if wrk:
        r = closed_loop_wrk(
            wrk,
            server.base_url,
            name,
            requests,
            connections=plan.sat_connections,
            duration=plan.sat_seconds,
        )
    else:
        r = closed_loop_python(
            server.base_url,
            name,
            requests,
            concurrency=plan.sat_connections,
            duration=plan.sat_seconds,
        )
    return r, (cpu_of(server) - cpu0) / (time.monotonic() - t0)


def median_result(results: list[Result]) -> Result:
    """The run with the median throughput (its own latencies travel with it)."""
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]


def pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def scenario_polling(
    report: Report,
    z: servers.Server,
    ref: servers.Server,
    ds: dataset.Dataset,
    plan: Plan,
    wrk: str | None,
    profile_seconds: float,
) -> None:
    print("\n[1] courier polling", flush=True)
    zreq = scenarios.courier_poll_requests(ds.courier_tokens, plan.poll_limit)
    rreq = scenarios.reference_poll_requests(ds.courier_tokens, plan.poll_limit)
    warm(z.base_url, zreq)
    warm(ref.base_url, rreq)
    name = f"1 courier GET /v1/orders @{plan.open_rate:.0f}/s"
    zr = asyncio.run(
        open_loop(z.base_url, name, zreq, rate=plan.open_rate, duration=plan.open_seconds)
    )
    rr = asyncio.run(
        open_loop(ref.base_url, name, rreq, rate=plan.open_rate, duration=plan.open_seconds)
    )
    report.add(name, "zariz", zr, ratio=f"p95 {zr.pct(95) / rr.pct(95):.1f}x the ceiling's")
    report.add(name, "reference", rr)
    # Half the rate: where Zariz is below saturation on this machine, what latency it gives.
    half = plan.open_rate / 2
    name = f"1 courier GET /v1/orders @{half:.0f}/s"
    zr = asyncio.run(open_loop(z.base_url, name, zreq, rate=half, duration=plan.open_seconds))
    report.add(name, "zariz", zr)

    name = "1 courier GET /v1/orders saturation"
    zs: list[Result] = []
    rs: list[Result] = []
    ratios: list[float] = []
    zcpu: list[float] = []
    rcpu: list[float] = []
    for i in range(plan.sat_rounds):
        # Alternate who goes first so drift on a noisy machine does not favour one side.
        order = [(z, zreq, zs, zcpu), (ref, rreq, rs, rcpu)]
        for server, reqs, bucket, cpu in order if i % 2 == 0 else order[::-1]:
            result, cores = saturate(wrk, server, name, reqs, plan)
            bucket.append(result)
            cpu.append(cores)
        ratios.append(zs[-1].rps / rs[-1].rps)
    zmed, rmed = median_result(zs), median_result(rs)
    report.add(
        name,
        "zariz",
        zmed,
        ratio=pct(statistics.median(ratios)),
        note=f"median of {plan.sat_rounds}; runs {', '.join(f'{r.rps:.0f}' for r in zs)}; "
        f"server CPU {statistics.median(zcpu):.2f} cores",
    )
    report.add(
        name,
        "reference",
        rmed,
        note=f"runs {', '.join(f'{r.rps:.0f}' for r in rs)}; "
        f"server CPU {statistics.median(rcpu):.2f} cores",
    )
    if profile_seconds:
        pid = z.workers()[0]
        print(
            f"  profiling zariz worker {pid} for {profile_seconds:.0f} s under saturation",
            flush=True,
        )
        profiled = threading.Thread(
            target=saturate, args=(wrk, z, name, zreq, Plan(sat_seconds=profile_seconds + 4))
        )
        profiled.start()
        time.sleep(2)
        report.note(profile_worker(pid, profile_seconds, RESULTS))
        profiled.join()

    # The events feed is another branch's; skipped until it is merged.
    status = httpx.get(
        f"{z.base_url}/v1/events?after=0&limit=1",
        headers=scenarios.bearer(next(iter(ds.courier_tokens.values()))),
    ).status_code
    if status == 404:
        report.note(
            "GET /v1/events is not in this build (404): the events polling scenario is skipped"
        )
        return
    after = max(0, ds.counts["order_events"] - 2000)
    zev = scenarios.events_requests(ds.courier_tokens, after)
    rev = scenarios.reference_events_requests(ds.courier_tokens, after)
    warm(z.base_url, zev, 50)
    name = f"1 courier GET /v1/events @{plan.open_rate:.0f}/s"
    zr = asyncio.run(
        open_loop(z.base_url, name, zev, rate=plan.open_rate, duration=plan.open_seconds)
    )
    rr = asyncio.run(
        open_loop(ref.base_url, name, rev, rate=plan.open_rate, duration=plan.open_seconds)
    )
    report.add(name, "zariz", zr)
    report.add(name, "reference", rr)
    name = "1 courier GET /v1/events saturation"
    zr, _ = saturate(wrk, z, name, zev, plan)
    rr, _ = saturate(wrk, ref, name, rev, plan)
    report.add(name, "zariz", zr, ratio=pct(zr.rps / rr.rps))
    report.add(name, "reference", rr)


def scenario_dashboard(report: Report, z: servers.Server, ds: dataset.Dataset, plan: Plan) -> None:
    print("\n[2] store dashboard", flush=True)
    token = ds.store_tokens[ds.busy_store_id]
    r = scenarios.store_dashboard(z.base_url, token, concurrency=8, duration=plan.dashboard_seconds)
    r.tool = "python, 8 users, 3 pages each"
    report.add("2 store dashboard (busy store)", "zariz", r, note="filters + cursor pages")


def scenario_storm(
    report: Report,
    z: servers.Server,
    ref: servers.Server,
    ds: dataset.Dataset,
    plan: Plan,
    racers: dict[int, str],
) -> None:
    print("\n[3] claim storm", flush=True)
    runs: dict[str, list[scenarios.Storm]] = {"zariz": [], "reference": []}
    targets: list[tuple[str, servers.Server, Callable[[int, int, str], Req]]] = [
        ("zariz", z, scenarios.zariz_claim),
        ("reference", ref, scenarios.reference_claim),
    ]
    for i in range(plan.storm_rounds):
        for target, server, request_for in targets if i % 2 == 0 else targets[::-1]:
            ids = dataset.add_pool_orders(
                ds.url, store_id=ds.store_ids[1], count=plan.storm_orders, boxes=5
            )
            storm = scenarios.claim_storm(server.base_url, target, ds.url, ids, racers, request_for)
            runs[target].append(storm)
            print(
                f"  {target:9} winners {len(storm.wins)} (db {storm.winners_in_db}) "
                f"attempts {storm.attempts} codes {storm.codes} drain {storm.drain_seconds:.2f} s "
                f"breaches {storm.capacity_breaches}",
                flush=True,
            )
    ratios = [
        a.claims_per_s / b.claims_per_s
        for a, b in zip(runs["zariz"], runs["reference"], strict=True)
    ]
    for target, storms in runs.items():
        med = sorted(storms, key=lambda s: s.claims_per_s)[len(storms) // 2]
        r = Result(
            f"3 claim storm ({plan.storm_couriers} couriers, {plan.storm_orders} orders)",
            requests=med.attempts,
            errors=med.errors,
            duration=med.duration,
            latencies_ms=med.latencies_ms,
            tool="python, 2 taps per courier",
        )
        exact = all(len(s.wins) == plan.storm_orders == s.winners_in_db for s in storms)
        breaches = sum(s.capacity_breaches for s in storms)
        report.add(
            r.name,
            target,
            r,
            ratio=pct(statistics.median(ratios)) if target == "zariz" else "",
            note=f"{med.claims_per_s:.0f} claims/s (median of {len(storms)}: "
            f"{', '.join(f'{s.claims_per_s:.0f}' for s in storms)}); req/s = attempts incl. 409s",
        )
        if target == "zariz":
            report.check(
                f"claim storm: exactly {plan.storm_orders} winners in every run: "
                f"{'yes' if exact else 'NO'} ({[len(s.wins) for s in storms]}); "
                f"capacity breaches: {breaches}"
            )


def scenario_create(report: Report, z: servers.Server, ds: dataset.Dataset, plan: Plan) -> None:
    print("\n[4] order creation with Idempotency-Key", flush=True)
    out = scenarios.order_creation(
        z.base_url, ds.url, ds.store_tokens, concurrency=16, duration=plan.create_seconds
    )
    out.result.tool = "python, 16 store users"
    report.add(out.result.name, "zariz", out.result, note="20% replays of an earlier key")
    ok = out.replay_mismatches == 0 and out.orders_in_db == out.created
    report.check(
        f"idempotency: {out.created} orders created, {out.orders_in_db} new rows, "
        f"{out.replays} replays, {out.replay_mismatches} replay mismatches: "
        f"{'ok' if ok else 'FAILED'}"
    )


def scenario_costs(
    report: Report, z: servers.Server, ref: servers.Server, ds: dataset.Dataset, plan: Plan
) -> None:
    print("\n[6] CPU per request", flush=True)
    courier, token = next(iter(ds.courier_tokens.items()))
    auth = scenarios.bearer(token)
    n = plan.cost_requests
    lst = f"/v1/orders?limit={plan.poll_limit}"
    # A losing claim: an order another courier holds already.
    (taken,) = dataset.add_pool_orders(ds.url, store_id=ds.store_ids[1], count=1, boxes=1)
    other = list(ds.courier_tokens.values())[1]
    won = httpx.post(f"{z.base_url}/v1/orders/{taken}/claim", headers=scenarios.bearer(other))
    ref_claim = f"/ref/claim/{taken}?courier_id={courier}"
    for cost in (
        costs.cpu_per_request(z, "GET /v1/auth/me", "GET", "/v1/auth/me", auth, n=n),
        costs.cpu_per_request(z, f"GET {lst} (courier)", "GET", lst, auth, n=n),
        costs.cpu_per_request(
            ref,
            f"GET {lst} (courier)",
            "GET",
            f"/ref/orders?courier_id={courier}&limit={plan.poll_limit}",
            {},
            n=n,
        ),
        costs.cpu_per_request(
            z,
            f"GET {lst}, unchanged (If-None-Match)",
            "GET",
            lst,
            auth,
            n=n,
            prepare=costs.if_none_match,
        ),
        costs.cpu_per_request(
            z,
            "GET /v1/events, unchanged (If-None-Match)",
            "GET",
            f"/v1/events?after={max(0, ds.counts['order_events'] - 2000)}",
            auth,
            n=n,
            prepare=costs.if_none_match,
        ),
        costs.cpu_per_request(
            z, "losing claim (409)", "POST", f"/v1/orders/{taken}/claim", auth, n=n
        ),
        costs.cpu_per_request(ref, "losing claim (409)", "POST", ref_claim, {}, n=n),
    ):
        report.cpu.append(cost)
        print(f"  {cost.name:44} {cost.target:9} {cost.status} {cost.ms:.2f} ms", flush=True)
    report.check(f"the losing claims' order was won once first: {won.status_code}")


def scenario_whole_list(
    report: Report, z: servers.Server, ref: servers.Server, ds: dataset.Dataset, plan: Plan
) -> None:
    print("\n[7] whole list: a store's orders without limit", flush=True)
    store = ds.store_ids[-1]
    auth = scenarios.bearer(ds.store_tokens[store])
    costs.whole_list(z, "/v1/orders", auth, 1)  # warm
    costs.whole_list(ref, f"/ref/store_orders?store_id={store}", {}, 1)
    zr, zrows, zerr, zlat = costs.whole_list(z, "/v1/orders", auth, plan.whole_list_seconds)
    rr, rrows, rerr, rlat = costs.whole_list(
        ref, f"/ref/store_orders?store_id={store}", {}, plan.whole_list_seconds
    )
    name = "7 a store's whole list (no limit), 4 clients"
    for target, rate, rows, errors, latencies in (
        ("zariz", zr, zrows, zerr, zlat),
        ("reference", rr, rrows, rerr, rlat),
    ):
        r = Result(
            name,
            requests=len(latencies),
            errors=errors,
            duration=plan.whole_list_seconds,
            latencies_ms=latencies,
            tool="python, 4 connections",
        )
        report.add(
            name,
            target,
            r,
            ratio=pct(zr / rr) if target == "zariz" and rr else "",
            note=f"{rows} rows per list, {rate * rows:.0f} rows/s",
        )


def scenario_pending(
    report: Report, z: servers.Server, ds: dataset.Dataset, admin_url: str
) -> None:
    print("\n[5] SSE fan-out and push latency", flush=True)
    for module in ("sse_bench", "push_bench"):
        if not (ROOT / "bench" / f"{module}.py").exists():
            report.note(f"bench/{module}.py is pending (another branch): skipped")
            continue
        env = {
            **os.environ,
            "BENCH_ZARIZ_URL": z.base_url,
            # Each of these benches creates and drops a scratch database of its own.
            "BENCH_DATABASE_URL": make_url(ds.url)
            .set(database=f"{make_url(ds.url).database}_{module}")
            .render_as_string(hide_password=False),
            "BENCH_ADMIN_URL": admin_url,
            "BENCH_JWT_SECRET": JWT_SECRET,
        }
        print(f"  running bench/{module}.py", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{module}"],
            env=env,
            cwd=ROOT,
            timeout=240,
            capture_output=True,
            text=True,
            check=False,
        )
        print(done.stdout[-4000:], done.stderr[-2000:], flush=True)
        report.note(f"bench/{module}.py exited {done.returncode}; its output is above")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for trying the bench out")
    parser.add_argument(
        "--profile", type=float, default=0, metavar="SECONDS", help="py-spy one Zariz worker"
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database behind")
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help="API processes of Zariz and the ceiling"
    )
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan()
    admin_url = os.environ.get(
        "BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    db_name = f"bench_{os.getpid()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.monotonic()
    load_start = os.getloadavg()

    print(f"scratch database {db_name}: migrating and loading ...", flush=True)
    url = dataset.create_database(admin_url, db_name)
    running: list[servers.Server] = []
    try:
        dataset.migrate(url)
        from app.core.config import Settings

        settings = Settings(database_url=url, jwt_secret=JWT_SECRET, access_token_ttl=3600)
        ds = dataset.load(url, settings)
        print(f"  loaded {ds.counts} in {ds.load_seconds:.1f} s", flush=True)
        report.note(
            f"dataset: {ds.counts}, loaded (COPY) in {ds.load_seconds:.1f} s "
            "after `alembic upgrade head`"
        )
        (RESULTS / "explain.md").write_text(explain(url))
        report.note("EXPLAIN (ANALYZE) of every list query shape: bench/results/explain.md")
        racers = dataset.add_couriers(url, settings, count=plan.storm_couriers, capacity=8)

        env = {
            "DATABASE_URL": url,
            "JWT_SECRET": JWT_SECRET,
            "ZARIZ_ENV": "production",
            "ACCESS_TOKEN_TTL": "3600",
            # Both servers get the same pool; 2 x 2 processes x 12 stay well inside Postgres's
            # default max_connections of 100 (which other clients share).
            "DB_POOL_SIZE": os.environ.get("BENCH_DB_POOL_SIZE", "8"),
            "DB_MAX_OVERFLOW": os.environ.get("BENCH_DB_MAX_OVERFLOW", "4"),
            # Zariz's threadpool must fit in that pool next to the SSE hub's 6 threads (as the
            # defaults do: 40 + 6 <= 20 + 26). With the default 40 threads on a 12-connection
            # pool an overload made threads wait 30 s for a connection and fail with 500s.
            "THREADPOOL_SIZE": os.environ.get("BENCH_THREADPOOL_SIZE", "6"),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        }
        if args.workers > 1:
            # `zariz serve` refuses several production processes with per-process login
            # counters; the bench logs in through the API only in the SSE bench.
            env["RATE_LIMIT_STORAGE"] = os.environ.get(
                "BENCH_RATE_LIMIT_STORAGE", "redis://127.0.0.1:6379/11"
            )
        zariz = str(Path(sys.executable).parent / "zariz")
        z = servers.start(
            "zariz", [zariz, "serve"], env, RESULTS / "zariz.log", workers=args.workers
        )
        running.append(z)
        ref = servers.start(
            "reference",
            [sys.executable, "-m", "bench.reference_app"],
            env,
            RESULTS / "reference.log",
            workers=args.workers,
        )
        running.append(ref)
        has_worker = (
            subprocess.run([zariz, "worker", "--help"], capture_output=True, check=False).returncode
            == 0
        )
        if has_worker:
            worker = servers.start_plain("worker", [zariz, "worker"], env, RESULTS / "worker.log")
            running.append(worker)
            report.note("`zariz worker` found and running alongside the API processes")
        else:
            report.note("`zariz worker` does not exist in this build: no worker process started")
        time.sleep(1)
        wrk = wrk_path()
        report.note(
            "load tool for saturation: "
            f"{'wrk (' + wrk + ')' if wrk else 'httpx in 2 processes (wrk not found)'}; "
            "client and servers share the machine's cores"
        )
        rss_steps = [f"started {rss_of(z)}"]
        with RssWatch([z, ref]) as rss:
            scenario_polling(report, z, ref, ds, plan, wrk, args.profile)
            rss_steps.append(f"after 1 {rss_of(z)}")
            scenario_dashboard(report, z, ds, plan)
            rss_steps.append(f"after 2 {rss_of(z)}")
            scenario_storm(report, z, ref, ds, plan, racers)
            rss_steps.append(f"after 3 {rss_of(z)}")
            scenario_create(report, z, ds, plan)
            rss_steps.append(f"after 4 {rss_of(z)}")
            scenario_whole_list(report, z, ref, ds, plan)
            rss_steps.append(f"after 7 {rss_of(z)}")
            scenario_costs(report, z, ref, ds, plan)
            rss_steps.append(f"after 6 {rss_of(z)}")
        # Where the peak comes from: each API process's resident memory after each scenario.
        report.note("zariz RSS per API process, MB: " + "; ".join(rss_steps))
        report.check(
            f"peak RSS per API process: zariz {rss.peak['zariz']:.0f} MB, "
            f"reference {rss.peak['reference']:.0f} MB"
        )
        scenario_pending(report, z, ds, admin_url)
    finally:
        for server in reversed(running):
            server.stop()
        if not args.keep_db:
            dataset.drop_database(admin_url, db_name)
    total = time.monotonic() - started
    report.note(f"total bench time {total:.0f} s on {os.cpu_count()} cores")
    load_end = os.getloadavg()
    report.note(
        f"API processes: {args.workers} per server; load average (1/5/15 min) at the start "
        f"{'/'.join(f'{x:.1f}' for x in load_start)}, at the end "
        f"{'/'.join(f'{x:.1f}' for x in load_end)}"
    )
    table = report.markdown()
    (RESULTS / "latest.md").write_text(
        f"# make bench — {time.strftime('%Y-%m-%d %H:%M')}\n\n{table}"
    )
    print("\n" + table)
    print(f"written to {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
