"""EXPLAIN (ANALYZE, BUFFERS) of every list query shape on the 100k-order dataset.

    python -m bench.explain_orders [--url postgresql+psycopg://.../bench_x]

Without --url it makes its own scratch database (bench_explain_<pid>), loads the bench dataset,
explains and drops it. The statements are the ones the services build (scope(), filtered(),
list_orders(), events_after()), compiled for Postgres, not hand-written copies.
"""

import argparse
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, create_engine, func, or_

from app.db.models import Order, OrderEvent, Role, User
from app.realtime.feed import event_rows, viewer_of
from app.services.auth import Principal
from app.services.order_views import with_names
from app.services.orders import OrderFilters, filtered, with_id_bounds
from app.services.visibility import event_scope

SCAN = re.compile(
    r"(Index Only Scan(?: Backward)? using \S+|Index Scan(?: Backward)? using \S+"
    r"|Bitmap Index Scan on \S+|Seq Scan on \S+)"
)


def principal(user_id: int, role: Role, store_ids: tuple[int, ...] = ()) -> Principal:
    return Principal(
        user=User(id=user_id, role=role), session_id=0, family_id=0, store_ids=store_ids
    )


def page(who: Principal, filters: OrderFilters, limit: int = 100, conn: Any = None) -> Select[Any]:
    # What services.orders.list_orders executes for the first page (with the id bounds it reads
    # first for a date range).
    if conn is not None:
        filters = with_id_bounds(conn, filters)
    return with_names(filtered(who, filters)).order_by(Order.id.desc()).limit(limit + 1)


def shapes(conn: Any) -> list[tuple[str, Select[Any]]]:
    courier = conn.exec_driver_sql(
        "SELECT courier_id FROM orders WHERE courier_id IS NOT NULL "
        "GROUP BY courier_id ORDER BY count(*) DESC LIMIT 1"
    ).scalar_one()
    busy_store = conn.exec_driver_sql(
        "SELECT store_id FROM orders GROUP BY store_id ORDER BY count(*) DESC LIMIT 1"
    ).scalar_one()
    last_event = conn.exec_driver_sql("SELECT max(id) FROM order_events").scalar_one()
    now = datetime.now(UTC)
    admin = principal(1, Role.ADMIN)
    week = OrderFilters(created_from=now - timedelta(days=8), created_to=now - timedelta(days=1))
    c = principal(courier, Role.COURIER)
    return [
        ("courier view (own + open pool), limit 20", page(c, OrderFilters(), 20)),
        ("courier view, page 2 (cursor)", page(c, OrderFilters(), 20).where(Order.id < 99_000)),
        (
            "store view (busy store, newest first)",
            page(principal(2, Role.STORE, (busy_store,)), OrderFilters(), 50),
        ),
        ("admin, status=new (dispatch board)", page(admin, OrderFilters(statuses=("new",)))),
        ("admin, status=failed", page(admin, OrderFilters(statuses=("failed",)))),
        (
            "admin, store_id + status",
            page(admin, OrderFilters(store_id=busy_store, statuses=("delivered",))),
        ),
        ("admin, date range (one week, a week ago)", page(admin, week, conn=conn)),
        (
            "admin, date range 50-55 days ago",
            page(
                admin,
                OrderFilters(
                    created_from=now - timedelta(days=55), created_to=now - timedelta(days=50)
                ),
                conn=conn,
            ),
        ),
        ("admin, q=cohen (name/phone search)", page(admin, OrderFilters(q="cohen"))),
        (
            "before issue 12: date range 50-55 days ago, created_at filter alone",
            page(admin, OrderFilters()).where(
                Order.created_at >= now - timedelta(days=55),
                Order.created_at < now - timedelta(days=50),
            ),
        ),
        ("admin, q=4567 (phone digits)", page(admin, OrderFilters(q="4567"))),
        (
            "before issue 12: q=4567 as replace() of the typed phone, OR the name terms",
            page(admin, OrderFilters()).where(
                or_(
                    func.lower(Order.recipient_first_name).like("%4567%"),
                    func.lower(Order.recipient_last_name).like("%4567%"),
                    func.lower(Order.recipient_first_name + " " + Order.recipient_last_name).like(
                        "%4567%"
                    ),
                    Order.phone.like("%4567%"),
                    func.replace(
                        func.replace(func.replace(Order.phone, "-", ""), " ", ""), "+", ""
                    ).like("%4567%"),
                )
            ),
        ),
        (
            "events feed: courier, after = last - 2000",
            event_rows()  # the feed's columns, its order's keys joined
            .where(OrderEvent.id > last_event - 2000, event_scope(viewer_of(c)))
            .order_by(OrderEvent.id)
            .limit(100),
        ),
        (
            "events feed: store, after = last - 2000",
            event_rows()
            .where(
                OrderEvent.id > last_event - 2000,
                event_scope(viewer_of(principal(2, Role.STORE, (busy_store,)))),
            )
            .order_by(OrderEvent.id)
            .limit(100),
        ),
    ]


def explain(url: str) -> str:
    engine = create_engine(url)
    out = []
    summary = []
    try:
        with engine.connect() as conn:
            for title, stmt in shapes(conn):
                compiled = stmt.compile(
                    dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
                )
                params = compiled.construct_params()
                plan = [
                    row[0]
                    for row in conn.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", params
                    )
                ]
                scans = sorted(set(SCAN.findall("\n".join(plan))))
                total = next((p for p in reversed(plan) if p.startswith("Execution Time")), "")
                summary.append(f"| {title} | {'; '.join(scans)} | {total.split(': ')[-1]} |")
                out.append(f"## {title}\n\n{compiled}\n\n" + "\n".join(plan) + "\n")
            conn.rollback()
    finally:
        engine.dispose()
    head = "| query | scans (index used) | execution |\n|---|---|---|\n" + "\n".join(summary)
    return head + "\n\n" + "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="an already loaded bench database")
    args = parser.parse_args()
    if args.url:
        print(explain(args.url))
        return
    from app.core.config import Settings
    from bench import dataset

    admin_url = os.environ.get(
        "BENCH_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"bench_explain_{os.getpid()}"
    url = dataset.create_database(admin_url, name)
    try:
        dataset.migrate(url)
        dataset.load(url, Settings(database_url=url))
        print(explain(url))
    finally:
        dataset.drop_database(admin_url, name)


if __name__ == "__main__":
    main()
