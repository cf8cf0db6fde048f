"""CPU per request of GET /v1/orders, this checkout against another (the "before"), paired.

    .venv/bin/python -m bench.render_costs --before /path/to/base-worktree [--rounds 3]

Loads a scratch database `bench_render_costs` as `make bench` does (bench/dataset.py), starts
one `zariz serve` process of each checkout (the before's code through PYTHONPATH, same venv)
and the ceiling (bench/reference_app.py), and measures, in interleaved rounds alternating who
goes first, the server CPU per request (bench/costs.py: sequential keep-alive requests, median
of 3 blocks) of a courier's `?limit=20` page and a store's whole list (no limit), and the same
two calls in-process (the service alone, CPU per call) in a child process of each checkout.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import costs, dataset, servers

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = "bench_render_costs"
JWT_SECRET = "bench-secret-" + "x" * 40
HERE = Path(__file__).resolve().parent.parent
RESULTS = HERE / "bench" / "results"
OWNER = text("SELECT user_id FROM store_memberships WHERE store_id = :store LIMIT 1")

# Run in a child process per checkout: the service calls alone, CPU per call.
IN_PROCESS = """
import json, os, statistics, sys, time
from sqlalchemy import select
from app.db.models import StoreMembership, User
from app.db.session import get_sessionmaker
from app.services import orders
from app.services.auth import Principal
from app.services.order_lists import complete_list

cfg = json.loads(sys.argv[1])
sessions = get_sessionmaker()

def principal(user_id):
    with sessions() as s:
        user = s.get(User, user_id)
        mine = select(StoreMembership.store_id).where(StoreMembership.user_id == user_id)
        stores = tuple(s.scalars(mine))
        s.expunge(user)
    return Principal(user=user, session_id=0, family_id=0, store_ids=stores)

courier, store = principal(cfg["courier"]), principal(cfg["owner"])

def page():
    first = dict(principal=courier, filters=orders.OrderFilters(), limit=20, cursor=None)
    with sessions() as s:
        if hasattr(orders, "list_orders_json"):
            orders.list_orders_json(s, **first)
        else:  # before: OrderReads, dumped as the route did
            from app.api.routes.orders import ORDER_LIST
            ORDER_LIST.dump_json(orders.list_orders(s, **first)[0])

def whole():
    with sessions() as s:
        b"".join(complete_list(s, principal=store, filters=orders.OrderFilters()))

out = {}
for name, fn, n in (("page", page, 300), ("whole", whole, 15)):
    for _ in range(5):
        fn()
    blocks = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            fn()
        blocks.append((time.process_time() - started) / n * 1000)
    out[name] = statistics.median(blocks)
print(json.dumps(out))
"""


def in_process(pythonpath: str, env: dict[str, str], cfg: dict[str, int]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, json.dumps(cfg)],
        env={**os.environ, **env, "PYTHONPATH": pythonpath},
        cwd=pythonpath,  # `python -c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout of the base commit")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    url = dataset.create_database(ADMIN_URL, DB_NAME)
    running: list[servers.Server] = []
    try:
        dataset.migrate(url)
        from app.core.config import Settings

        ds = dataset.load(url, Settings(database_url=url, jwt_secret=JWT_SECRET))
        courier, store = ds.courier_ids[0], ds.store_ids[-1]
        env = {
            "DATABASE_URL": url,
            "JWT_SECRET": JWT_SECRET,
            "ZARIZ_ENV": "production",
            "DB_POOL_SIZE": "8",
            "DB_MAX_OVERFLOW": "4",
            "THREADPOOL_SIZE": "6",
            "PUSH_WORKER": "off",
            "LOG_LEVEL": "INFO",
        }
        with create_engine(url).connect() as conn:
            owner = int(conn.execute(OWNER, {"store": store}).scalar_one())
        cfg = {"courier": courier, "owner": owner}
        zariz = str(Path(sys.executable).parent / "zariz")
        sides = {"before": str(Path(args.before).resolve()), "after": str(HERE)}
        started = {
            name: servers.start(
                name,
                [zariz, "serve"],
                {**env, "PYTHONPATH": path},
                RESULTS / f"render_costs_{name}.log",
                workers=1,
            )
            for name, path in sides.items()
        }
        running += started.values()
        ref = servers.start(
            "ceiling",
            [sys.executable, "-m", "bench.reference_app"],
            {**env, "PYTHONPATH": str(HERE)},
            RESULTS / "render_costs_ceiling.log",
            workers=1,
        )
        running.append(ref)
        courier_auth = {"Authorization": f"Bearer {ds.courier_tokens[courier]}"}
        store_auth = {"Authorization": f"Bearer {ds.store_tokens[store]}"}
        figures: dict[str, list[float]] = {}
        for r in range(args.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for name in order:
                srv = started[name]
                page = costs.cpu_per_request(
                    srv, "page", "GET", "/v1/orders?limit=20", courier_auth, n=400
                )
                whole = costs.cpu_per_request(srv, "whole", "GET", "/v1/orders", store_auth, n=20)
                inproc = in_process(sides[name], env, cfg)
                for key, value in (
                    ("HTTP courier limit=20", page.ms),
                    ("HTTP store whole list", whole.ms),
                    ("in-process courier page", inproc["page"]),
                    ("in-process store whole list", inproc["whole"]),
                ):
                    figures.setdefault(f"{key} | {name}", []).append(value)
            page = costs.cpu_per_request(
                ref, "page", "GET", f"/ref/orders?courier_id={courier}&limit=20", {}, n=400
            )
            whole = costs.cpu_per_request(
                ref, "whole", "GET", f"/ref/store_orders?store_id={store}", {}, n=20
            )
            figures.setdefault("HTTP courier limit=20 | ceiling", []).append(page.ms)
            figures.setdefault("HTTP store whole list | ceiling", []).append(whole.ms)
            print(f"round {r + 1} done, load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"load average at the end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("| CPU ms per request or call | median of rounds | rounds |\n|---|---:|---|")
        for key, values in sorted(figures.items()):
            rounds = ", ".join(f"{v:.2f}" for v in values)
            print(f"| {key} | {statistics.median(values):.2f} | {rounds} |")
    finally:
        for server in reversed(running):
            server.stop()
        dataset.drop_database(ADMIN_URL, DB_NAME)


if __name__ == "__main__":
    main()
