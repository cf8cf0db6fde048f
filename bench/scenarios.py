"""The scenarios: courier polling, store dashboard, claim storm, idempotent order creation."""

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from bench.loadgen import Req, Result, client
from bench.rawhttp import ClientError


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def courier_poll_requests(courier_tokens: dict[int, str], limit: int) -> list[Req]:
    return [Req("GET", f"/v1/orders?limit={limit}", bearer(t)) for t in courier_tokens.values()]


def reference_poll_requests(courier_tokens: dict[int, str], limit: int) -> list[Req]:
    # wrk's script wants a token on every line; the reference app ignores it.
    return [
        Req("GET", f"/ref/orders?courier_id={c}&limit={limit}", bearer("none"))
        for c in courier_tokens
    ]


def events_requests(courier_tokens: dict[int, str], after: int) -> list[Req]:
    return [
        Req("GET", f"/v1/events?after={after}&limit=100", bearer(t))
        for t in courier_tokens.values()
    ]


def reference_events_requests(courier_tokens: dict[int, str], after: int) -> list[Req]:
    return [
        Req("GET", f"/ref/events?courier_id={c}&after={after}&limit=100", bearer("none"))
        for c in courier_tokens
    ]


# --- store dashboard --------------------------------------------------------------------------


def dashboard_queries(now: datetime) -> list[tuple[str, str]]:
    week_ago = (now - timedelta(days=7)).date().isoformat()
    yesterday = (now - timedelta(days=1)).date().isoformat()
    return [
        ("newest", "/v1/orders?limit=50"),
        ("status", "/v1/orders?status=delivered,failed&limit=50"),
        ("active", "/v1/orders?status=new,assigned,accepted,picked_up&limit=50"),
        ("date range", f"/v1/orders?from={week_ago}&to={yesterday}&limit=50"),
        ("q search", "/v1/orders?q=cohen&limit=50"),
    ]


async def _dashboard(
    base_url: str, token: str, *, concurrency: int, duration: float, pages: int
) -> Result:
    result = Result("store dashboard")
    shapes = dashboard_queries(datetime.now(UTC))
    rng = random.Random(3)
    headers = bearer(token)
    async with client(base_url, concurrency) as http:
        started = time.perf_counter()
        deadline = started + duration

        async def user() -> None:
            while time.perf_counter() < deadline:
                _, path = rng.choice(shapes)
                for _ in range(pages):  # page 1, then follow X-Next-Cursor
                    t0 = time.perf_counter()
                    try:
                        response = await http.get(path, headers=headers)
                        status = response.status_code
                    except ClientError:
                        status, response = 0, None
                    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    result.requests += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if status != 200 or response is None:
                        result.errors += 1
                        break
                    cursor = response.headers.get("x-next-cursor")
                    if not cursor:
                        break
                    path = f"{path.split('&cursor=')[0]}&cursor={cursor}"

        await asyncio.gather(*(user() for _ in range(concurrency)))
        result.duration = time.perf_counter() - started
    return result


def store_dashboard(base_url: str, token: str, *, concurrency: int, duration: float) -> Result:
    return asyncio.run(
        _dashboard(base_url, token, concurrency=concurrency, duration=duration, pages=3)
    )


# --- claim storm -----------------------------------------------------------------------------


@dataclass
class Storm:
    target: str
    orders: int
    couriers: int
    attempts: int = 0
    wins: list[tuple[int, int]] = field(default_factory=list)  # (courier, order)
    codes: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    drain_seconds: float = 0.0  # first request to the last winning response
    duration: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    winners_in_db: int = 0
    capacity_breaches: int = 0

    @property
    def claims_per_s(self) -> float:
        return len(self.wins) / self.drain_seconds if self.drain_seconds else 0.0

    @property
    def attempts_per_s(self) -> float:
        return self.attempts / self.duration if self.duration else 0.0


async def _storm(
    base_url: str,
    storm: Storm,
    order_ids: list[int],
    couriers: dict[int, str],
    request_for: Callable[[int, int, str], Req],
    *,
    parallel: int,
    connections: int,
) -> None:
    remaining = set(order_ids)
    rng = random.Random(11)
    async with client(base_url, connections) as http:
        started = time.perf_counter()

        async def claim(courier: int, token: str, order: int) -> str:
            req = request_for(order, courier, token)
            t0 = time.perf_counter()
            try:
                response = await http.request(req.method, req.path, headers=req.headers)
                status = response.status_code
                body: Any = response.json() if response.content else {}
            except ClientError:
                status, body = 0, {}
            storm.latencies_ms.append((time.perf_counter() - t0) * 1000)
            storm.attempts += 1
            if status == 200:
                code = "won"
                storm.wins.append((courier, order))
                storm.drain_seconds = time.perf_counter() - started
            elif status == 409:
                code = str(body.get("code", "conflict"))
            else:
                code = f"http_{status}"
                storm.errors += 1
            storm.codes[code] = storm.codes.get(code, 0) + 1
            if code in ("won", "order_already_taken"):
                remaining.discard(order)
            return code

        async def courier(courier_id: int, token: str) -> None:
            for _ in range(50):  # bounded: a courier gives up after 50 rounds of taps
                if not remaining:
                    return
                picks = rng.sample(sorted(remaining), min(parallel, len(remaining)))
                codes = await asyncio.gather(*(claim(courier_id, token, o) for o in picks))
                if "won" in codes or "capacity_exceeded" in codes:
                    return  # loaded up: this courier stops racing

        await asyncio.wait_for(
            asyncio.gather(*(courier(c, t) for c, t in couriers.items())), timeout=120
        )
        storm.duration = time.perf_counter() - started


def claim_storm(
    base_url: str,
    target: str,
    db_url: str,
    order_ids: list[int],
    couriers: dict[int, str],
    request_for: Callable[[int, int, str], Req],
    *,
    parallel: int = 2,
    connections: int = 64,
) -> Storm:
    """Every courier taps `parallel` random open orders at once until it wins one or none is left.

    Two taps at once by one courier are the capacity race: each storm order is 5 boxes and a
    racer's capacity 8, so winning both would breach capacity.
    """
    storm = Storm(target, orders=len(order_ids), couriers=len(couriers))
    asyncio.run(
        _storm(
            base_url,
            storm,
            order_ids,
            couriers,
            request_for,
            parallel=parallel,
            connections=connections,
        )
    )
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            storm.winners_in_db = conn.execute(
                text("SELECT count(*) FROM orders WHERE id = ANY(:ids) AND status = 'accepted'"),
                {"ids": order_ids},
            ).scalar_one()
            storm.capacity_breaches = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT o.courier_id FROM orders o "
                    "JOIN users u ON u.id = o.courier_id "
                    "WHERE o.status IN ('accepted', 'picked_up') AND o.deleted_at IS NULL "
                    "GROUP BY o.courier_id, u.capacity_boxes "
                    "HAVING sum(o.boxes_count) > u.capacity_boxes) breached"
                )
            ).scalar_one()
            # Deliver the storm's orders so the racers start the next round empty-handed.
            conn.execute(
                text(
                    "UPDATE orders SET status = 'delivered', delivered_at = now() "
                    "WHERE id = ANY(:ids)"
                ),
                {"ids": order_ids},
            )
    finally:
        engine.dispose()
    return storm


def zariz_claim(order: int, _courier: int, token: str) -> Req:
    return Req("POST", f"/v1/orders/{order}/claim", bearer(token))


def reference_claim(order: int, courier: int, _token: str) -> Req:
    return Req("POST", f"/ref/claim/{order}?courier_id={courier}")


# --- order creation with Idempotency-Key ------------------------------------------------------


@dataclass
class Creation:
    result: Result
    created: int = 0
    replays: int = 0
    replay_mismatches: int = 0
    orders_in_db: int = 0


async def _create(
    base_url: str,
    store_tokens: dict[int, str],
    *,
    concurrency: int,
    duration: float,
    replay_share: float,
) -> Creation:
    out = Creation(Result("order creation (Idempotency-Key)"))
    result = out.result
    rng = random.Random(5)
    done: list[tuple[str, str, dict[str, Any], int]] = []  # key, token, body, order id
    stores = list(store_tokens.items())
    async with client(base_url, concurrency) as http:
        started = time.perf_counter()
        deadline = started + duration

        async def user() -> None:
            while time.perf_counter() < deadline:
                replay = bool(done) and rng.random() < replay_share
                if replay:
                    key, token, body, expected = rng.choice(done)
                else:
                    store_id, token = rng.choice(stores)
                    key, expected = uuid.uuid4().hex, 0
                    body = {
                        "recipient_first_name": "Bench",
                        "recipient_last_name": rng.choice(["Cohen", "Levi", "Katz"]),
                        "phone": f"052-{rng.randint(1000000, 9999999)}",
                        "street": "Herzl",
                        "building_no": str(rng.randint(1, 99)),
                        "boxes_count": rng.randint(1, 12),
                        "store_id": store_id,
                    }
                t0 = time.perf_counter()
                try:
                    response = await http.post(
                        "/v1/orders", json=body, headers={**bearer(token), "Idempotency-Key": key}
                    )
                    status = response.status_code
                    order_id = response.json().get("id", 0) if status == 201 else 0
                except ClientError:
                    status, order_id = 0, 0
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != 201:
                    result.errors += 1
                    continue
                if replay:
                    out.replays += 1
                    if order_id != expected:
                        out.replay_mismatches += 1
                else:
                    out.created += 1
                    done.append((key, token, body, order_id))

        await asyncio.gather(*(user() for _ in range(concurrency)))
        result.duration = time.perf_counter() - started
    return out


def order_creation(
    base_url: str,
    db_url: str,
    store_tokens: dict[int, str],
    *,
    concurrency: int,
    duration: float,
    replay_share: float = 0.2,
) -> Creation:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            before = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        out = asyncio.run(
            _create(
                base_url,
                store_tokens,
                concurrency=concurrency,
                duration=duration,
                replay_share=replay_share,
            )
        )
        with engine.connect() as conn:
            out.orders_in_db = (
                conn.execute(text("SELECT count(*) FROM orders")).scalar_one() - before
            )
    finally:
        engine.dispose()
    return out
