"""A scratch Postgres database with realistic data: stores, couriers, 100k orders with events.

Loaded with COPY after `alembic upgrade head`, so it takes seconds, not minutes. Access tokens are
minted directly (a real session row per user, signed with the servers' JWT secret): logging in
1,500 users through Argon2id would take longer than the benchmark.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.security import create_access_token, hash_password
from app.db.migrations import alembic_config
from app.db.models.order import digits_of

N_STORES = 50
N_COURIERS = 500
N_ORDERS = 100_000
N_POOL = 100  # new, unassigned orders in the open pool when the run starts
N_ADMINS = 3
BUSY_STORE_SHARE = 0.10  # the busiest store has a tenth of all orders
COURIER_CAPACITY = 8
FIRST_NAMES = ["Noa", "Avi", "Dana", "Yossi", "Maya", "Eitan", "Tamar", "Omer", "Shira", "Lior"]
LAST_NAMES = ["Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "Dahan", "Friedman", "Katz"]
STREETS = [
    "Herzl",
    "Dizengoff",
    "Allenby",
    "Ben Yehuda",
    "Rothschild",
    "King George",
    "Ibn Gabirol",
]


@dataclass
class Dataset:
    url: str  # SQLAlchemy URL of the scratch database
    admin_tokens: list[str] = field(default_factory=list)
    store_tokens: dict[int, str] = field(default_factory=dict)  # store id -> its owner's token
    courier_tokens: dict[int, str] = field(default_factory=dict)  # courier id -> token
    store_ids: list[int] = field(default_factory=list)
    busy_store_id: int = 0
    courier_ids: list[int] = field(default_factory=list)
    pool_order_ids: list[int] = field(default_factory=list)
    load_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> str:
    """Drops and creates `name` (it must start with bench_); returns its SQLAlchemy URL."""
    assert name.startswith("bench_"), "scratch databases are named bench_*"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    assert name.startswith("bench_")
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    from alembic import command

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            config.attributes["skip_logging"] = True
            command.upgrade(config, "head")
            conn.commit()
    finally:
        engine.dispose()


def _copy(
    cur: psycopg.Cursor[Any], table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _phone(rng: random.Random) -> str:
    return f"05{rng.randint(0, 9)}-{rng.randint(1000000, 9999999)}"


def load(url: str, settings: Settings, *, seed: int = 7) -> Dataset:
    """Fills a freshly migrated database; returns ids and tokens the scenarios need."""
    started = datetime.now(UTC)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    password_hash = hash_password("bench-password")  # one hash for everyone: nobody logs in
    ds = Dataset(url=url)

    stores = [
        (i, f"Store {i}", "active", f"{i} Market St", _phone(rng)) for i in range(1, N_STORES + 1)
    ]
    ds.store_ids = [s[0] for s in stores]
    ds.busy_store_id = 1

    users: list[tuple[Any, ...]] = []
    uid = 0
    admin_ids, owner_of = [], {}
    for i in range(N_ADMINS):
        uid += 1
        admin_ids.append(uid)
        users.append(
            (uid, "admin", "active", f"Admin {i}", f"admin{i}@bench.test", None, password_hash, 8)
        )
    for store_id in ds.store_ids:
        uid += 1
        owner_of[store_id] = uid
        users.append(
            (
                uid,
                "store",
                "active",
                f"Owner {store_id}",
                f"store{store_id}@bench.test",
                None,
                password_hash,
                8,
            )
        )
    for i in range(N_COURIERS):
        uid += 1
        ds.courier_ids.append(uid)
        users.append(
            (
                uid,
                "courier",
                "active",
                f"Courier {i}",
                None,
                f"+97250{i:07d}",
                password_hash,
                COURIER_CAPACITY,
            )
        )

    weights = [BUSY_STORE_SHARE * (N_STORES - 1) / (1 - BUSY_STORE_SHARE)] + [1.0] * (N_STORES - 1)
    orders: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    load_of = dict.fromkeys(ds.courier_ids, 0)
    span = timedelta(days=60)
    n_history = N_ORDERS - N_POOL
    for oid in range(1, N_ORDERS + 1):
        store_id = rng.choices(ds.store_ids, weights)[0]
        if oid <= n_history:
            created = now - span + span * (oid / n_history) - timedelta(minutes=30)
        else:
            created = now - timedelta(minutes=N_ORDERS - oid + 1) / 10
        boxes = rng.choice([1, 1, 2, 2, 3, 4, 6, 9, 12])
        mult = min(-(-boxes // 8), 3)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        street, building = rng.choice(STREETS), str(rng.randint(1, 200))
        courier: int | None = None
        accepted = picked = delivered = failed = canceled = None
        cancel_reason = failure_reason = None
        ev: list[tuple[str, str | None, str, int | None, int | None, bool, datetime]] = [
            ("order.created", None, "new", None, None, True, created)
        ]
        if oid > n_history:
            status = "new"
        else:
            roll = rng.random()
            recent = oid > n_history - 3000
            if roll < 0.08:
                status, canceled, cancel_reason = (
                    "canceled",
                    created + timedelta(minutes=5),
                    "store",
                )
                ev.append(("order.status_changed", "new", "canceled", None, None, True, canceled))
            else:
                courier = rng.choice(ds.courier_ids)
                accepted = created + timedelta(minutes=3)
                picked = accepted + timedelta(minutes=10)
                ev.append(("order.accepted", "new", "accepted", courier, None, True, accepted))
                if recent and roll > 0.97 and load_of[courier] + boxes <= COURIER_CAPACITY:
                    status = rng.choice(["accepted", "picked_up"])
                    load_of[courier] += boxes
                    if status == "picked_up":
                        ev.append(
                            (
                                "order.status_changed",
                                "accepted",
                                "picked_up",
                                courier,
                                None,
                                False,
                                picked,
                            )
                        )
                    else:
                        picked = None
                elif roll < 0.12:
                    status, failed, failure_reason = (
                        "failed",
                        picked + timedelta(minutes=20),
                        "no answer",
                    )
                    ev.append(
                        (
                            "order.status_changed",
                            "accepted",
                            "picked_up",
                            courier,
                            None,
                            False,
                            picked,
                        )
                    )
                    ev.append(
                        (
                            "order.status_changed",
                            "picked_up",
                            "failed",
                            courier,
                            None,
                            False,
                            failed,
                        )
                    )
                else:
                    status, delivered = "delivered", picked + timedelta(minutes=20)
                    ev.append(
                        (
                            "order.status_changed",
                            "accepted",
                            "picked_up",
                            courier,
                            None,
                            False,
                            picked,
                        )
                    )
                    ev.append(
                        (
                            "order.status_changed",
                            "picked_up",
                            "delivered",
                            courier,
                            None,
                            False,
                            delivered,
                        )
                    )
        updated = ev[-1][6]
        if status == "new":
            ds.pool_order_ids.append(oid)
        phone = _phone(rng)
        orders.append(
            (
                oid,
                store_id,
                courier,
                status,
                f"{store_id} Market St",
                f"{street} {building}",
                first,
                last,
                phone,
                street,
                building,
                None,
                None,
                None,
                boxes,
                mult,
                35 * mult,
                owner_of[store_id],
                None,
                accepted,
                picked,
                delivered,
                failed,
                canceled,
                cancel_reason,
                failure_reason,
                len(ev),
                None,
                created,
                updated,
                digits_of(phone),
            )
        )
        for type_, from_s, to_s, cid, prev, pool, at in ev:
            actor = owner_of[store_id] if type_ == "order.created" else cid
            role = "store" if type_ == "order.created" else ("courier" if cid else "store")
            events.append(
                (oid, type_, from_s, to_s, actor, role, cid, None, None, at, store_id, prev, pool)
            )
    events.sort(key=lambda e: e[9])

    order_cols = [
        "id",
        "store_id",
        "courier_id",
        "status",
        "pickup_address",
        "delivery_address",
        "recipient_first_name",
        "recipient_last_name",
        "phone",
        "street",
        "building_no",
        "floor",
        "apartment",
        "notes",
        "boxes_count",
        "boxes_multiplier",
        "price_total",
        "created_by_id",
        "assigned_at",
        "accepted_at",
        "picked_up_at",
        "delivered_at",
        "failed_at",
        "canceled_at",
        "cancel_reason",
        "failure_reason",
        "version",
        "deleted_at",
        "created_at",
        "updated_at",
        "phone_digits",
    ]
    event_cols = [
        "order_id",
        "type",
        "from_status",
        "to_status",
        "actor_id",
        "actor_role",
        "courier_id",
        "reason",
        "data",
        "created_at",
        "store_id",
        "prev_courier_id",
        "pool_change",
    ]
    all_user_ids = [u[0] for u in users]
    expires = now + timedelta(days=1)
    with psycopg.connect(_libpq(url)) as conn:
        with conn.cursor() as cur:
            _copy(cur, "stores", ["id", "name", "status", "pickup_address", "phone"], stores)
            _copy(
                cur,
                "users",
                [
                    "id",
                    "role",
                    "status",
                    "name",
                    "email",
                    "phone",
                    "password_hash",
                    "capacity_boxes",
                ],
                users,
            )
            _copy(
                cur,
                "store_memberships",
                ["user_id", "store_id", "role_in_store"],
                [(owner_of[s], s, "owner") for s in ds.store_ids],
            )
            _copy(
                cur,
                "user_sessions",
                ["id", "user_id", "token_hash", "family_id", "expires_at"],
                [(u, u, "0" * 64, u, expires) for u in all_user_ids],
            )
            _copy(cur, "orders", order_cols, orders)
            _copy(cur, "order_events", event_cols, events)
            for table in (
                "stores",
                "users",
                "store_memberships",
                "user_sessions",
                "orders",
                "order_events",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")

    def token(user_id: int, role: str, store_ids: list[int]) -> str:
        return create_access_token(
            user_id=user_id, role=role, session_id=user_id, store_ids=store_ids, settings=settings
        )

    ds.admin_tokens = [token(a, "admin", []) for a in admin_ids]
    ds.store_tokens = {s: token(owner_of[s], "store", [s]) for s in ds.store_ids}
    ds.courier_tokens = {c: token(c, "courier", []) for c in ds.courier_ids}
    ds.counts = {
        "stores": len(stores),
        "users": len(users),
        "orders": len(orders),
        "order_events": len(events),
    }
    ds.load_seconds = (datetime.now(UTC) - started).total_seconds()
    return ds


def add_couriers(url: str, settings: Settings, *, count: int, capacity: int) -> dict[int, str]:
    """Fresh couriers with no load (the claim storm's racers); returns id -> token."""
    password_hash = hash_password("bench-password")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            start = conn.execute(text("SELECT coalesce(max(id), 0) FROM users")).scalar_one()
            ids = list(range(start + 1, start + 1 + count))
            conn.execute(
                text(
                    "INSERT INTO users (id, role, status, name, phone, password_hash, "
                    "capacity_boxes) VALUES (:id, 'courier', 'active', :name, :phone, :ph, :cap)"
                ),
                [
                    {
                        "id": i,
                        "name": f"Racer {i}",
                        "phone": f"+97254{i:07d}",
                        "ph": password_hash,
                        "cap": capacity,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO user_sessions (id, user_id, token_hash, family_id, expires_at) "
                    "VALUES (:id, :user, :h, :id, now() + interval '1 day')"
                ),
                [{"id": 10_000_000 + i, "user": i, "h": "0" * 64} for i in ids],
            )
            for table in ("users", "user_sessions"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    finally:
        engine.dispose()
    return {
        i: create_access_token(
            user_id=i, role="courier", session_id=10_000_000 + i, store_ids=[], settings=settings
        )
        for i in ids
    }


def add_pool_orders(url: str, *, store_id: int, count: int, boxes: int) -> list[int]:
    """`count` new unassigned orders (the claim storm's prey); returns their ids."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                text(
                    "INSERT INTO orders (store_id, status, pickup_address, delivery_address, "
                    "recipient_first_name, recipient_last_name, phone, phone_digits, street, "
                    "building_no, boxes_count, boxes_multiplier, price_total) "
                    "SELECT :store, 'new', 'Market St', 'Herzl 1', 'Storm', 'Order', "
                    "'050-1234567', '0501234567', 'Herzl', '1', :boxes, 1, 35 "
                    "FROM generate_series(1, :n) RETURNING id"
                ),
                {"store": store_id, "boxes": boxes, "n": count},
            )
            return [r[0] for r in rows]
    finally:
        engine.dispose()
