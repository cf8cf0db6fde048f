"""Runs the live-update machinery with the app (hub and LISTEN), and ends streams on SIGTERM."""

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from app.core.config import Settings
from app.db.listen import PgListener
from app.db.session import get_sessionmaker, is_postgres
from app.realtime.hub import Hub
from app.services import freshness, signals
from app.services.principal_cache import principals

LISTENER_NAME = "zariz-listener"
PRINCIPALS_LISTENER_NAME = "zariz-principals-listener"


@asynccontextmanager
async def live_updates(settings: Settings) -> AsyncIterator[Hub]:
    hub = Hub(settings=settings, sessions=get_sessionmaker())
    await hub.start()
    listeners: list[PgListener] = []

    def on_events() -> None:
        freshness.bump()
        hub.wake()

    def on_changes() -> None:
        principals.invalidate()
        freshness.bump()

    if is_postgres(settings.database_url):
        listener = PgListener(
            settings.direct_database_url,
            signals.EVENTS,
            on_events,
            application_name=LISTENER_NAME,
        )
        # Other processes' changes to users, stores, memberships and sessions: this process's
        # principal cache and list validators are used only while it hears them.
        changes = PgListener(
            settings.direct_database_url,
            signals.PRINCIPALS,
            on_changes,
            application_name=PRINCIPALS_LISTENER_NAME,
        )
        listeners = [listener, changes]
        principals.hear_remote(lambda: changes.connected)
        freshness.hear_remote(lambda: changes.connected and listener.connected)
        for each in listeners:
            each.start()
    restore_signals = close_streams_on_exit_signal(hub)
    try:
        yield hub
    finally:
        restore_signals()
        principals.hear_remote(None)
        freshness.hear_remote(None)
        # Together: each takes up to a second to notice, and tests start and stop many apps.
        await asyncio.gather(*(asyncio.to_thread(each.stop) for each in listeners))
        await hub.stop()


def close_streams_on_exit_signal(hub: Hub) -> Callable[[], None]:
    """Chains onto the server's SIGINT/SIGTERM handlers to end open streams at once.

    uvicorn waits for open responses to finish before it runs the lifespan shutdown, and an SSE
    response never finishes by itself: without this, shutdown would sit out the whole graceful
    timeout (or for ever, with none). The server's own handler still runs afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach only the main thread (e.g. not under TestClient)
    loop = asyncio.get_running_loop()
    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.close_all, "server shutting down")
        prior = previous.get(signum)
        if callable(prior):
            prior(signum, frame)
        elif prior == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, prior in previous.items():
            if signal.getsignal(sig) is handler and prior is not None:
                signal.signal(sig, prior)

    return restore
