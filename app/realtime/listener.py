"""One LISTEN connection per API process: every event committed anywhere wakes this process's hub.

It holds a direct connection (settings.direct_database_url: LISTEN does not survive a transaction
pooler), reconnects with backoff when the database restarts or the backend is killed, and wakes
the hub after every (re)connect: the hub reads everything above its mark, so notifications missed
while disconnected cost nothing.
"""

import asyncio
import logging
import random
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from app.realtime.announce import CHANNEL

log = logging.getLogger("zariz.listener")

APPLICATION_NAME = "zariz-listener"
# A connection that silently died (no RST) is found by a round trip after this much quiet.
KEEPALIVE_SECONDS = 30.0
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 10.0


def libpq_url(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class Listener:
    def __init__(self, url: str, on_wake: Callable[[], None]):
        self._conninfo = libpq_url(url)
        self._on_wake = on_wake
        self._task: asyncio.Task[None] | None = None
        self.connects = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            connects = self.connects
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", str(exc)[:200])
            if self.connects > connects:
                backoff = BACKOFF_FIRST  # it was up: the database is back, retry at once
            jitter = 1 + random.random() / 2  # noqa: S311 (spreads reconnects, not security)
            await asyncio.sleep(backoff * jitter)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=APPLICATION_NAME
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.connects += 1
            if self.connects > 1:
                log.info("LISTEN connection re-established")
            # Catch up on whatever committed while this process was not listening.
            self._on_wake()
            while True:
                async for _notify in conn.notifies(timeout=KEEPALIVE_SECONDS):
                    self._on_wake()
                await conn.execute("SELECT 1")
