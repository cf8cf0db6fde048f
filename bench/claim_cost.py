"""CPU per losing claim, this tree against another checkout of Zariz, interleaved (issue 12).

One scratch database loaded as `make bench` loads it; one `zariz serve` process of this tree,
one of the tree given with --base (run from its own source via PYTHONPATH, same virtualenv) and
the ceiling (`bench/reference_app.py`), one process each. Each round measures, server after
server (the order alternating), the CPU per request of a losing claim (an order another courier
holds: 409 `order_already_taken`) and of `/v1/auth/me`, as `make bench`'s scenario 6 does:
sequential keep-alive requests, median of 3 blocks. Then, with --storm N, N claim storms
(scenario 3: 1,000 couriers x 200 orders) against each server, interleaved.

    .venv/bin/python -m bench.claim_cost --base /work/wt/claim-base --rounds 3
"""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

from bench import costs, dataset, scenarios, servers
from bench.rawhttp import RawClient

RESULTS = Path(__file__).parent / "results"
JWT_SECRET = "bench-secret-bench-secret-bench-secret-0123456789"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="per block (3 blocks)")
    parser.add_argument("--storm", type=int, default=0, help="claim storms per server")
    parser.add_argument("--wins", type=int, default=0, help="winning claims per server and round")
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="per server and round: fresh tokens each sending two /v1/auth/me at once",
    )
    parser.add_argument("--profile", type=float, default=0, help="py-spy this tree's process")
    parser.add_argument(
        "--profile-wins", action="store_true", help="profile winning claims, not losing ones"
    )
    args = parser.parse_args()
    admin_url = os.environ.get(
        "BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    db_name = f"bench_claim_{os.getpid()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    url = dataset.create_database(admin_url, db_name)
    running: list[servers.Server] = []
    try:
        dataset.migrate(url)
        from app.core.config import Settings

        settings = Settings(database_url=url, jwt_secret=JWT_SECRET, access_token_ttl=3600)
        ds = dataset.load(url, settings)
        racers = dataset.add_couriers(url, settings, count=1000, capacity=8) if args.storm else {}
        winners: list[str] = []
        if args.wins:  # fresh couriers for the winning claims, one each
            count = 2 * args.wins * args.rounds
            winners = list(dataset.add_couriers(url, settings, count=count, capacity=8).values())
        pairs: list[str] = []
        if args.pairs:  # fresh tokens, each used once per server (each process caches its own)
            count = args.pairs * args.rounds
            pairs = list(dataset.add_couriers(url, settings, count=count, capacity=8).values())
        env = {
            "DATABASE_URL": url,
            "JWT_SECRET": JWT_SECRET,
            "ZARIZ_ENV": "production",
            "ACCESS_TOKEN_TTL": "3600",
            "DB_POOL_SIZE": "8",
            "DB_MAX_OVERFLOW": "4",
            "THREADPOOL_SIZE": "6",
            "LOG_LEVEL": "INFO",
        }
        zariz = str(Path(sys.executable).parent / "zariz")
        base_env = {**env, "PYTHONPATH": str(Path(args.base).resolve())}
        new = servers.start("new", [zariz, "serve"], env, RESULTS / "claim_new.log", workers=1)
        running.append(new)
        base = servers.start(
            "base", [zariz, "serve"], base_env, RESULTS / "claim_base.log", workers=1
        )
        running.append(base)
        ref = servers.start(
            "reference",
            [sys.executable, "-m", "bench.reference_app"],
            env,
            RESULTS / "claim_ref.log",
            workers=1,
        )
        running.append(ref)

        courier, token = next(iter(ds.courier_tokens.items()))
        auth = scenarios.bearer(token)
        (taken,) = dataset.add_pool_orders(ds.url, store_id=ds.store_ids[1], count=1, boxes=1)
        other = list(ds.courier_tokens.values())[1]
        won = httpx.post(f"{new.base_url}/v1/orders/{taken}/claim", headers=scenarios.bearer(other))
        print(f"order {taken} won by another courier first: {won.status_code}", flush=True)
        claim = f"/v1/orders/{taken}/claim"
        bodies = {
            s.name: httpx.post(f"{s.base_url}{claim}", headers=auth).content for s in (new, base)
        }
        print(f"409 bodies equal but for the request id: {_same_bodies(bodies)}", flush=True)

        if args.profile:
            from bench import profile

            pid = new.workers()[0]
            fresh: list[str] = []
            prey: list[int] = []
            if args.profile_wins:  # fresh couriers, each winning a new order
                fresh = list(dataset.add_couriers(url, settings, count=3000, capacity=8).values())
                prey = dataset.add_pool_orders(
                    ds.url, store_id=ds.store_ids[1], count=3000, boxes=1
                )

            box: list[str] = []
            spy = threading.Thread(
                target=lambda: box.append(profile.profile_worker(pid, args.profile, RESULTS))
            )
            spy.start()
            deadline = time.monotonic() + args.profile + 1
            while time.monotonic() < deadline:
                if args.profile_wins:
                    ids, prey = prey[:50], prey[50:]
                    tokens, fresh = fresh[:50], fresh[50:]
                    _winning_claims(new, ids, tokens)
                else:
                    costs.cpu_per_request(new, "claim", "POST", claim, auth, n=200)
            spy.join()
            print(box[0])

        table: dict[str, list[float]] = {}
        for i in range(args.rounds):
            order = [new, base] if i % 2 == 0 else [base, new]
            for server in order:
                for name, method, path in (
                    ("losing claim", "POST", claim),
                    ("auth/me", "GET", "/v1/auth/me"),
                ):
                    cost = costs.cpu_per_request(server, name, method, path, auth, n=args.requests)
                    table.setdefault(f"{name} {server.name}", []).append(cost.ms)
                    print(
                        f"round {i + 1} {server.name:4} {name:13} {cost.status} "
                        f"{cost.ms:.2f} ms {[round(b, 2) for b in cost.blocks]}",
                        flush=True,
                    )
            if args.wins:
                for server in order:
                    ids = dataset.add_pool_orders(
                        ds.url, store_id=ds.store_ids[1], count=args.wins, boxes=1
                    )
                    tokens, winners = winners[: args.wins], winners[args.wins :]
                    ms = _winning_claims(server, ids, tokens)
                    table.setdefault(f"winning claim {server.name}", []).append(ms)
                    print(f"round {i + 1} {server.name:4} winning claim {ms:.2f} ms", flush=True)
            if args.pairs:
                tokens = pairs[i * args.pairs : (i + 1) * args.pairs]
                for server in order:
                    ms = _first_pairs(server, tokens)
                    table.setdefault(f"first pair {server.name}", []).append(ms)
                    print(f"round {i + 1} {server.name:4} first pair {ms:.2f} ms", flush=True)
            ref_claim = f"/ref/claim/{taken}?courier_id={courier}"
            cost = costs.cpu_per_request(ref, "ceiling", "POST", ref_claim, {}, n=args.requests)
            table.setdefault("losing claim ceiling", []).append(cost.ms)
            print(f"round {i + 1} ceiling losing UPDATE {cost.ms:.2f} ms", flush=True)

        storms: dict[str, list[float]] = {}
        for i in range(args.storm):
            targets = [
                (new, scenarios.zariz_claim),
                (base, scenarios.zariz_claim),
                (ref, scenarios.reference_claim),
            ]
            for server, request_for in targets if i % 2 == 0 else targets[::-1]:
                ids = dataset.add_pool_orders(ds.url, store_id=ds.store_ids[1], count=200, boxes=5)
                before = sum(servers.cpu_seconds(pid) for pid in server.workers())
                storm = scenarios.claim_storm(
                    server.base_url, server.name, ds.url, ids, racers, request_for
                )
                cpu = sum(servers.cpu_seconds(pid) for pid in server.workers()) - before
                storms.setdefault(server.name, []).append(storm.claims_per_s)
                print(
                    f"storm {i + 1} {server.name:9} {storm.claims_per_s:.0f} claims/s, server CPU "
                    f"{cpu:.2f} s, winners "
                    f"{len(storm.wins)} (db {storm.winners_in_db}), attempts {storm.attempts}, "
                    f"codes {storm.codes}, breaches {storm.capacity_breaches}",
                    flush=True,
                )

        print(f"\nload average at the start {load_start}, at the end {os.getloadavg()}")
        for name, values in table.items():
            print(f"{name:28} median {statistics.median(values):.2f} ms  {values}")
        for name, values in storms.items():
            print(f"storm {name:22} median {statistics.median(values):.0f} claims/s  {values}")
    finally:
        for server in reversed(running):
            server.stop()
        dataset.drop_database(admin_url, db_name)
    return 0


def _winning_claims(server: servers.Server, order_ids: list[int], tokens: list[str]) -> float:
    """Server CPU per claim, ms: each courier claims its own new order, one after another."""

    async def run() -> float:
        async with RawClient(server.base_url, 1) as http:
            before = sum(servers.cpu_seconds(pid) for pid in server.workers())
            for order_id, token in zip(order_ids, tokens, strict=True):
                response = await http.request(
                    "POST", f"/v1/orders/{order_id}/claim", headers=scenarios.bearer(token)
                )
                assert response.status_code == 200, response.status_code
            after = sum(servers.cpu_seconds(pid) for pid in server.workers())
            return (after - before) / len(order_ids) * 1000

    return asyncio.run(run())


def _first_pairs(server: servers.Server, tokens: list[str]) -> float:
    """Server CPU per pair, ms: each fresh token sends two `/v1/auth/me` at once (a courier's
    two taps), token after token; both requests are the token's first on this process."""

    async def run() -> float:
        async with RawClient(server.base_url, 2) as http:
            before = sum(servers.cpu_seconds(pid) for pid in server.workers())
            for token in tokens:
                headers = scenarios.bearer(token)
                both = await asyncio.gather(
                    *(http.request("GET", "/v1/auth/me", headers=headers) for _ in range(2))
                )
                assert all(r.status_code == 200 for r in both), [r.status_code for r in both]
            after = sum(servers.cpu_seconds(pid) for pid in server.workers())
            return (after - before) / len(tokens) * 1000

    return asyncio.run(run())


def _same_bodies(bodies: dict[str, bytes]) -> bool:
    import json

    def strip(raw: bytes) -> dict[str, object]:
        body = json.loads(raw)
        body.pop("request_id", None)
        return dict(body)

    a, b = (strip(v) for v in bodies.values())
    print(f"  new:  {bodies['new']!r}")
    return a == b


if __name__ == "__main__":
    raise SystemExit(main())
