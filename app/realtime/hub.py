"""The per-process SSE fan-out: reads new events once per wake-up and hands each stream its share.

Wake-ups come from the after-commit signal (this process's commits), the Postgres listener
(every other process's commits) and a slow safety poll. Notifications carry no content that is
trusted: on each wake-up the hub reads every event above its low-water mark (one unscoped query,
whatever the number of streams), renders each once with and once without the order, and filters
per stream in Python with the same visibility rule the SQL scope uses. The sequencer decides what
may go out (in id order, see app/realtime/sequencer.py). With no stream open the hub does no
database work.
"""

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import anyio
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.base import utcnow
from app.realtime import reads
from app.realtime.feed import EventRow
from app.realtime.reads import Grant
from app.realtime.sequencer import Released, Sequencer
from app.services import signals
from app.services.visibility import Viewer, can_see, sees_details

log = logging.getLogger("zariz.sse")

T = TypeVar("T")

FETCH_LIMIT = 1000
# While a gap holds events back, re-read this often so it resolves as soon as it can.
GAP_POLL_SECONDS = 0.1
# At activation, gaps among this many newest ids whose later neighbour is this young may belong
# to transactions still running: they are re-checked (and delivered late if they commit).
STARTUP_WINDOW = 1000
STARTUP_GAP_AGE_SECONDS = 60.0
ERROR_BACKOFF_SECONDS = 1.0


def encode(message: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines inside strings, so the payload is always one `data:` line.
    return json.dumps(message, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Frame:
    """One event as one kind of viewer sees it: encoded once, shared by all their streams."""

    event_id: int
    data: bytes  # the JSON of the `data:` line
    wire: bytes  # the whole message: `id:` and `data:` lines
    # Committed after later ids went out (its transaction outlived the grace period).
    late: bool = False

    @classmethod
    def of(cls, message: dict[str, Any]) -> "Frame":
        data = encode(message)
        return cls(message["event_id"], data, b"id: %d\ndata: %s\n\n" % (message["event_id"], data))


@dataclass(frozen=True)
class Rendered:
    event: EventRow
    detailed: Frame
    basic: Frame


@dataclass(eq=False)
class Subscriber:
    viewer: Viewer
    grant: Grant
    # The hub's low-water mark when the stream joined: later events come through `frames`,
    # earlier ones are the stream's replay.
    start: int
    # Ids below `start` the hub may still deliver late; a replay that sent one must skip it.
    late_candidates: frozenset[int]
    limit: int
    frames: deque[Frame] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: str | None = None

    def push(self, frame: Frame) -> None:
        if self.closed:
            return
        if len(self.frames) >= self.limit:
            # A client this far behind resumes faster by reconnecting and replaying from the
            # database than by the hub buffering for it without bound.
            self.close("client too slow")
            return
        self.frames.append(frame)
        self.ready.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self.ready.set()

    def drain(self) -> list[Frame]:
        self.ready.clear()
        frames = list(self.frames)
        self.frames.clear()
        return frames


class Hub:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session]):
        self.settings = settings
        self.sessions = sessions
        self._subscribers: set[Subscriber] = set()
        # Each user's open streams, oldest first: the per-user cap ends the oldest.
        self._by_user: dict[int, list[Subscriber]] = {}
        self._sequencer: Sequencer[Rendered] | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.wakeups = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        # Own thread budgets: fan-out never queues behind ordinary requests in the default pool,
        # and a reconnect storm's replays cannot take that pool over either.
        self._db_limiter = anyio.CapacityLimiter(2)
        self.replay_limiter = anyio.CapacityLimiter(4)
        signals.subscribe(signals.EVENTS, self._on_local_commit)
        self._tasks = [
            asyncio.create_task(self._fan_out_loop(), name="sse-fan-out"),
            asyncio.create_task(self._recheck_loop(), name="sse-recheck"),
        ]

    async def stop(self) -> None:
        self.close_all("server shutting down")
        signals.unsubscribe(signals.EVENTS, self._on_local_commit)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def close_all(self, reason: str) -> None:
        """Ends every open stream (on shutdown, so the server is not held open by them)."""
        self._closing = True
        for subscriber in list(self._subscribers):
            subscriber.close(reason)

    def wake(self) -> None:
        """Thread-safe: something may have been committed."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the app is gone
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def _on_local_commit(self, _event_ids: list[str]) -> None:
        self.wake()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # -- streams ----------------------------------------------------------------------------

    async def subscribe(self, *, viewer: Viewer, grant: Grant) -> Subscriber | None:
        if self._closing:
            return None
        async with self._lock:
            if self._sequencer is None:
                self._sequencer = await self._in_thread(self._activate)
            subscriber = Subscriber(
                viewer=viewer,
                grant=grant,
                start=self._sequencer.low,
                late_candidates=frozenset(self._sequencer.abandoned),
                limit=self.settings.sse_queue_max,
            )
            self._subscribers.add(subscriber)
            self._admit(subscriber)
        return subscriber

    def _admit(self, subscriber: Subscriber) -> None:
        """One user's streams are capped per process; a new one ends the oldest. A client that
        reconnects (a tab reloaded, a flaky network) keeps working; a script opening streams in
        a loop holds at most the cap."""
        streams = self._by_user.setdefault(subscriber.grant.user_id, [])
        streams.append(subscriber)
        while len(streams) > self.settings.sse_max_streams_per_user:
            streams.pop(0).close("too many streams")

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        streams = self._by_user.get(subscriber.grant.user_id)
        if streams is not None and subscriber in streams:
            streams.remove(subscriber)
            if not streams:
                del self._by_user[subscriber.grant.user_id]

    # -- fan-out ----------------------------------------------------------------------------

    async def _in_thread(self, func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func, limiter=self._db_limiter)

    def _activate(self) -> Sequencer[Rendered]:
        with self.sessions() as session:
            recent = reads.newest_events(session, limit=STARTUP_WINDOW)
        now, young = time.monotonic(), utcnow().timestamp() - STARTUP_GAP_AGE_SECONDS
        maybe_in_flight = {
            missing: now
            for newer, older in itertools.pairwise(recent)
            if newer.created_at.timestamp() > young
            for missing in range(older.id + 1, newer.id)
        }
        low = recent[0].id if recent else 0
        return Sequencer(
            low=low, grace=self.settings.sse_gap_grace_seconds, abandoned=maybe_in_flight
        )

    async def _fan_out_loop(self) -> None:
        failures = 0
        while True:
            sequencer = self._sequencer
            timeout = (
                GAP_POLL_SECONDS
                if sequencer is not None and sequencer.has_gaps
                else self.settings.sse_poll_seconds
            )
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()
            self.wakeups += 1
            try:
                async with self._lock:
                    if not self._subscribers:
                        self._sequencer = None  # idle: forget, re-activate on the next stream
                        continue
                    more = await self._poll()
            except Exception:
                failures += 1
                log.exception("SSE fan-out failed (%d in a row); retrying", failures)
                # Database down: keep trying, without a stack trace every second.
                await asyncio.sleep(min(ERROR_BACKOFF_SECONDS * 2 ** (failures - 1), 10.0))
                more = True
            else:
                failures = 0
            if more:
                self._wakeup.set()

    async def _poll(self) -> bool:
        sequencer = self._sequencer
        assert sequencer is not None
        released, full = await self._in_thread(functools.partial(self._fetch, sequencer))
        self._deliver(released.in_order, late=False)
        self._deliver(released.late, late=True)
        return full

    def _fetch(self, sequencer: Sequencer[Rendered]) -> tuple[Released[Rendered], bool]:
        """Runs in a worker thread while the hub's lock is held; all database work first, so a
        failure leaves the sequencer untouched and the next wake-up simply tries again."""
        with self.sessions() as session:
            snapshot = reads.current_snapshot(session)
            events = reads.events_since(
                session, after=sequencer.low, also_ids=sequencer.recheck_ids(), limit=FETCH_LIMIT
            )
            fresh = [e for e in events if e.id not in sequencer.pending]
            rendered = {e.id: e for e in fresh}
            details = reads.detailed_messages(session, events=fresh) if fresh else []
        found = []
        for message in details:
            event = rendered[message["event_id"]]
            basic = {k: v for k, v in message.items() if k != "order"}
            found.append((event.id, Rendered(event, Frame.of(message), Frame.of(basic))))
        released = sequencer.accept(found, now=time.monotonic(), snapshot=snapshot)
        return released, len(events) >= FETCH_LIMIT

    def _deliver(self, items: Iterable[Rendered], *, late: bool) -> None:
        items = list(items)
        if not items:
            return
        if late:
            items = [
                Rendered(i.event, replace(i.detailed, late=True), replace(i.basic, late=True))
                for i in items
            ]
        for subscriber in list(self._subscribers):
            viewer = subscriber.viewer
            for item in items:
                if can_see(viewer, item.event):
                    detailed = sees_details(viewer, item.event)
                    subscriber.push(item.detailed if detailed else item.basic)

    # -- session re-checks ------------------------------------------------------------------

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sse_auth_recheck_seconds)
            subscribers = list(self._subscribers)
            if not subscribers:
                continue
            grants = {s.grant for s in subscribers}
            try:
                lapsed = await self._in_thread(functools.partial(self._lapsed, grants))
            except Exception:
                log.exception("SSE session re-check failed; retrying")
                continue
            for subscriber in subscribers:
                if subscriber.grant in lapsed:
                    subscriber.close("session ended")

    def _lapsed(self, grants: set[Grant]) -> set[Grant]:
        with self.sessions() as session:
            return reads.lapsed_grants(session, grants=grants)
