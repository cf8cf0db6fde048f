"""Starts and stops the live-update machinery with the app, and ends open streams on SIGTERM."""

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.session import get_sessionmaker
from app.realtime.hub import Hub
from app.realtime.listener import Listener


@asynccontextmanager
async def live_updates(settings: Settings) -> AsyncIterator[Hub]:
    hub = Hub(settings=settings, sessions=get_sessionmaker())
    await hub.start()
    listener = None
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        listener = Listener(settings.direct_database_url, hub.wake)
        await listener.start()
    restore_signals = close_streams_on_exit_signal(hub)
    try:
        yield hub
    finally:
        restore_signals()
        if listener is not None:
            await listener.stop()
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
