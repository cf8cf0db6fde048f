"""The cost of GET /v1/orders without limit: one store's orders as one streamed JSON array.

    .venv/bin/python -m bench.list_complete                      # SQLite scratch file
    .venv/bin/python -m bench.list_complete --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

For each size: the server's work alone (the service's generator drained, tracemalloc peak),
the same orders built as one list (what a non-streamed answer would hold), and the whole
request over real HTTP to a uvicorn on loopback (median time to the last byte of 5 runs).
"""

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _measure(work: Callable[[], int]) -> tuple[float, float, int]:
    """(seconds, peak MiB traced, bytes produced) of one run."""
    tracemalloc.start()
    started = time.perf_counter()
    produced = work()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="admin URL; a scratch database bench_lists is used")
    parser.add_argument("--orders", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()

    from bench.dataset import create_database, drop_database, migrate

    if args.postgres:
        url = create_database(args.postgres, "bench_lists")
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='zariz-bench-')}/lists.db"
    # Settings are read once, on first use: point them at the scratch database first.
    os.environ.update({"DATABASE_URL": url, "PUSH_WORKER": "off", "LOG_LEVEL": "WARNING"})
    try:
        migrate(url)
        run(url, args.orders)
    finally:
        if args.postgres:
            drop_database(args.postgres, "bench_lists")


def run(url: str, sizes: list[int]) -> None:
    import httpx
    import uvicorn
    from sqlalchemy import insert

    from app.db.models import Order, Role, Store, StoreMembership
    from app.db.session import get_sessionmaker
    from app.main import create_app
    from app.services.auth import Principal, _issue
    from app.services.order_lists import complete_list
    from app.services.orders import OrderFilters
    from app.services.users import new_user

    sessions = get_sessionmaker()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{base}/health/live").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)

    print(f"database: {url.split('@')[-1]}")
    print("orders  part                      time      peak traced  bytes")

    def bench_size(n: int) -> None:
        with sessions() as session:
            store = Store(name=f"Bench store {n}", status="active", pickup_address="Herzl 1")
            session.add(store)
            session.flush()
            user = new_user(
                session,
                role=Role.STORE,
                name="Bench",
                email=f"bench{n}@example.com",
                phone=None,
                password="bench password",
            )
            session.add(StoreMembership(user_id=user.id, store_id=store.id, role_in_store="owner"))
            session.execute(insert(Order), [_order(store.id, i) for i in range(n)])
            session.commit()
            token = _issue(session, user=user, family_id=None, user_agent="bench").access_token
            session.commit()
            principal = Principal(user=user, session_id=0, family_id=0, store_ids=(store.id,))

        def streamed() -> int:
            with sessions() as session:
                chunks: Iterator[bytes] = complete_list(
                    session, principal=principal, filters=OrderFilters()
                )
                return sum(len(chunk) for chunk in chunks)

        def one_list() -> int:
            from app.services.orders import list_orders_json

            with sessions() as session:
                body, _ = list_orders_json(
                    session, principal=principal, filters=OrderFilters(), limit=n, cursor=None
                )
                return len(body)

        def over_http() -> int:
            headers = {"Authorization": f"Bearer {token}"}
            with (
                httpx.Client(base_url=base, timeout=60) as client,
                client.stream("GET", "/v1/orders", headers=headers) as response,
            ):
                assert response.status_code == 200
                return sum(len(chunk) for chunk in response.iter_raw())

        streamed()  # warm caches and compiled statements
        for label, work in (("service, streamed", streamed), ("service, one list", one_list)):
            seconds, peak, size = _measure(work)
            print(f"{n:>6}  {label:<24} {seconds * 1000:7.0f} ms  {peak:7.1f} MiB  {size:,}")
        times = []
        for _ in range(5):
            started = time.perf_counter()
            size = over_http()
            times.append(time.perf_counter() - started)
        print(
            f"{n:>6}  {'HTTP, to the last byte':<24} {statistics.median(times) * 1000:7.0f} ms"
            f"  {'':>11}  {size:,}"
        )

    for n in sizes:
        bench_size(n)
    server.should_exit = True


def _order(store_id: int, i: int) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "status": "delivered" if i % 3 else "new",
        "pickup_address": "Herzl 1, Tel Aviv",
        "delivery_address": f"Dizengoff {i}, 3, 12",
        "recipient_first_name": "Noa",
        "recipient_last_name": f"Levi {i}",
        "phone": "+972501234567",
        "street": "Dizengoff",
        "building_no": str(i),
        "floor": "3",
        "apartment": "12",
        "notes": "Leave at the door",
        "boxes_count": 1 + i % 20,
        "boxes_multiplier": 1,
        "price_total": 35,
    }


if __name__ == "__main__":
    main()
