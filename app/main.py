"""The FastAPI application: middleware, routers, error handlers and background components."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.docs import install_docs
from app.api.edge import BodyLimitMiddleware, SecurityHeadersMiddleware, body_limit_for
from app.api.errors import install_error_handlers
from app.api.middleware import RequestContextMiddleware
from app.api.routes import (
    admin,
    auth,
    couriers,
    devices,
    events,
    health,
    metrics,
    orders,
    proofs,
    stores,
)
from app.console.router import install_console
from app.core import ratelimit
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.db.session import get_engine
from app.push.worker import start_inline
from app.realtime.runtime import live_updates

# Sends in flight get this long to finish at shutdown (APNs answers in well under a second).
PUSH_STOP_TIMEOUT = 15.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # Sync endpoints run in this threadpool; the engine's pool is sized to match it, so a
    # request thread never waits for a database connection another thread could release.
    to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
    # Built here, before any request: concurrent first logins raced to build it (500s on Redis).
    ratelimit.init()
    # PUSH_WORKER=inline: the push worker is a thread of this process (SQLite, `make run`).
    push_worker = start_inline(settings, get_engine())
    try:
        async with live_updates(settings) as hub:
            app.state.hub = hub
            yield
    finally:
        if push_worker is not None:
            push_worker.stop()
            await to_thread.run_sync(push_worker.join, PUSH_STOP_TIMEOUT)


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
        # Served by install_docs from the app's own assets, not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
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
    # Outermost last: request ids, then security headers (the 413 gets them), then body caps.
    app.add_middleware(BodyLimitMiddleware, limit=body_limit_for(settings))
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts)
    app.add_middleware(RequestContextMiddleware)
    for router in (
        health.router,
        metrics.router,
        auth.router,
        orders.router,
        proofs.router,
        couriers.router,
        devices.router,
        stores.router,
        admin.router,
        events.router,
    ):
        app.include_router(router)
    install_docs(app)
    install_console(app)
    return app
