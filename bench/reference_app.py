"""The ceiling: a minimal FastAPI app doing only the SQL of the scenarios, nothing else.

No auth, no ORM, no Pydantic response models: the courier-scope SELECT of GET /v1/orders
serialized as plain dicts, and the bare conditional UPDATE of a claim. Served exactly as
`zariz serve` serves Zariz (same uvicorn settings, same process count, same pool sizes), so
Zariz's figures divided by these are what the framework and our own code cost.

    python -m bench.reference_app --port 8100 --workers 2   (DATABASE_URL names the database)
"""

import argparse
import os
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine, text

# The same statement Zariz's scope() + list_orders() compile to for a courier in open mode.
COURIER_SCOPE_SQL = text(
    "SELECT * FROM orders WHERE orders.deleted_at IS NULL "
    "AND (orders.courier_id = :courier OR (orders.status = 'new' AND orders.courier_id IS NULL)) "
    "ORDER BY orders.id DESC LIMIT :limit"
)
# The events feed of a courier in open mode (app/services/visibility.py event_scope).
EVENTS_SQL = text(
    "SELECT * FROM order_events WHERE order_events.id > :after "
    "AND (order_events.courier_id = :courier OR order_events.prev_courier_id = :courier "
    "OR order_events.pool_change IS true) ORDER BY order_events.id LIMIT :limit"
)
# A store's complete list (GET /v1/orders without limit as its owner): every undeleted order
# with the store's and the courier's names, newest first.
STORE_ORDERS_SQL = text(
    "SELECT orders.*, stores.name AS store_name, users.name AS courier_name FROM orders "
    "JOIN stores ON stores.id = orders.store_id LEFT JOIN users ON users.id = orders.courier_id "
    "WHERE orders.store_id = :store AND orders.deleted_at IS NULL ORDER BY orders.id DESC"
)
# The claim's WHERE repeats its preconditions, as Zariz's does; no capacity check, no event.
CLAIM_SQL = text(
    "UPDATE orders SET status = 'accepted', courier_id = :courier, accepted_at = now(), "
    "version = version + 1, updated_at = now() "
    "WHERE id = :id AND status = 'new' AND courier_id IS NULL AND deleted_at IS NULL RETURNING id"
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def create_app() -> FastAPI:
    engine = create_engine(
        os.environ["DATABASE_URL"],
        pool_size=int(os.environ.get("DB_POOL_SIZE", "20")),
        max_overflow=int(os.environ.get("DB_MAX_OVERFLOW", "10")),
        pool_pre_ping=True,
    )
    # Telemetry off as in Zariz (app/main.py): neither app exports OpenTelemetry.
    app = FastAPI(
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    )

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ref/orders")
    def orders(courier_id: int, limit: int = 100) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(COURIER_SCOPE_SQL, {"courier": courier_id, "limit": limit + 1})
            out = [{k: _plain(v) for k, v in row._mapping.items()} for row in rows]
        return JSONResponse(out[:limit])

    @app.get("/ref/events")
    def events(courier_id: int, after: int = 0, limit: int = 100) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(EVENTS_SQL, {"courier": courier_id, "after": after, "limit": limit})
            out = [{k: _plain(v) for k, v in row._mapping.items()} for row in rows]
        return JSONResponse({"events": out, "last_event_id": out[-1]["id"] if out else after})

    @app.get("/ref/store_orders")
    def store_orders(store_id: int) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(STORE_ORDERS_SQL, {"store": store_id})
            out = [{k: _plain(v) for k, v in row._mapping.items()} for row in rows]
        return JSONResponse(out)

    @app.post("/ref/claim/{order_id}")
    def claim(order_id: int, courier_id: int) -> JSONResponse:
        with engine.begin() as conn:
            won = conn.execute(CLAIM_SQL, {"id": order_id, "courier": courier_id}).first()
        if won is None:
            return JSONResponse({"code": "order_already_taken"}, status_code=409)
        return JSONResponse({"id": won[0], "status": "accepted", "courier_id": courier_id})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # The same arguments app/cli.py's `zariz serve` passes.
    uvicorn.run(
        "bench.reference_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
