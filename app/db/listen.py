"""One reconnecting LISTEN loop, used by the SSE hub and by the push worker.

It holds a direct connection (LISTEN does not survive a transaction pooler) in a thread of its
own, reconnects with jittered exponential backoff when the database restarts or the backend is
killed, and calls on_wake after every (re)connect: both users read everything that is due, so
notifications missed while disconnected cost nothing.
"""

import logging
import random
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("zariz.listener")

# A connection that silently died (no RST) is found by a round trip after this much quiet.
KEEPALIVE_SECONDS = 30.0
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 10.0
# How often a waiting loop looks up to notice stop(); not a poll of the database.
STOP_CHECK_SECONDS = 1.0


def libpq_url(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class PgListener:
    def __init__(
        self, url: str, channel: str, on_wake: Callable[[], None], *, application_name: str
    ) -> None:
        self._conninfo = libpq_url(url)
        self._channel = channel
        self._on_wake = on_wake
        self._application_name = application_name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.connects = 0
        # True from LISTEN (and the catch-up on_wake after it) until the connection is lost:
        # what a process caching across notifications checks before it trusts its cache.
        self.connected = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._application_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_CHECK_SECONDS * 3)
            self._thread = None

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set():
            connects = self.connects
            try:
                self._listen()
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "LISTEN %s connection lost (%s); reconnecting", self._channel, str(exc)[:200]
                )
            if self.connects > connects:
                backoff = BACKOFF_FIRST  # it was up: the database is back, retry at once
            jitter = 1 + random.random() / 2  # noqa: S311 (spreads reconnects, not security)
            self._stopping.wait(backoff * jitter)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, application_name=self._application_name
        ) as conn:
            conn.execute(f"LISTEN {self._channel}")
            self.connects += 1
            if self.connects > 1:
                log.info("LISTEN %s connection re-established", self._channel)
            try:
                # Catch up on whatever committed while this process was not listening.
                self._on_wake()
                self.connected = True
                last_heard = time.monotonic()
                while not self._stopping.is_set():
                    for _notify in conn.notifies(timeout=STOP_CHECK_SECONDS):
                        last_heard = time.monotonic()
                        self._on_wake()
                    if time.monotonic() - last_heard >= KEEPALIVE_SECONDS:
                        conn.execute("SELECT 1")
                        last_heard = time.monotonic()
            finally:
                self.connected = False
