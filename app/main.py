"""The FastAPI application: middleware, routers, error handlers and background components."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.routes import admin, auth, couriers, events, health, metrics, orders, stores
from app.core.config import get_settings
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.realtime.lifecycle import live_updates


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Sync endpoints run in this threadpool; the engine's pool is sized to match it, so a
    # request thread never waits for a database connection another thread could release.
    to_thread.current_default_thread_limiter().total_tokens = get_settings().threadpool_size
    async with live_updates(get_settings()) as hub:
        app.state.hub = hub
        yield


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Zariz",
        version="0.1.0",
        description="Courier-delivery dispatch: orders, couriers, stores, live updates and push.",
        lifespan=lifespan,
        # Zariz exports Prometheus metrics and structured logs, not OpenTelemetry; FastAPI's
        # native telemetry otherwise probes for OTel providers on every request (~8% of CPU).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "X-Next-Cursor", "Link"],
        )
    app.add_middleware(RequestContextMiddleware)
    for router in (
        health.router,
        metrics.router,
        auth.router,
        orders.router,
        couriers.router,
        stores.router,
        admin.router,
        events.router,
    ):
        app.include_router(router)
    return app
