"""One SSE stream: the retry hint, the replay after Last-Event-ID, live frames and heartbeats.

An async generator on the event loop: it holds no thread while it waits, and touches the
database only for replay pages (briefly, in a worker thread).
"""

import asyncio
import time
from collections.abc import AsyncIterator

import anyio

from app.core.metrics import SSE_CONNECTIONS, SSE_EVENTS_SENT
from app.realtime import reads
from app.realtime.feed import viewer_of
from app.realtime.hub import Frame, Hub, Subscriber
from app.services.auth import Principal
from app.services.visibility import Viewer

REPLAY_PAGE = 500
PING = b": ping\n\n"


def late_frame(frame: Frame) -> bytes:
    # No `id:` line: the client's Last-Event-ID stays where it was, so a reconnect neither skips
    # events above this one nor replays those it already has. The JSON still carries event_id.
    return b"data: %s\n\n" % frame.data


async def sse_stream(
    *,
    hub: Hub,
    principal: Principal,
    last_event_id: int | None,
) -> AsyncIterator[bytes]:
    settings = hub.settings
    viewer = viewer_of(principal)
    grant = reads.Grant(
        session_id=principal.session_id,
        user_id=principal.user.id,
        role=principal.role,
        store_ids=principal.store_ids,
    )
    subscriber = await hub.subscribe(viewer=viewer, grant=grant)
    if subscriber is None:
        yield b": server shutting down\n\n"
        return
    SSE_CONNECTIONS.inc()
    # Sent once subscribed: a client that has read it cannot miss an event committed after.
    yield b"retry: %d\n\n" % settings.sse_retry_ms
    try:
        cursor = subscriber.start
        replayed: set[int] = set()
        if last_event_id is not None and last_event_id < subscriber.start:
            async for event_id, replay_frame in _replay(
                hub, viewer, last_event_id, subscriber.start
            ):
                if event_id in subscriber.late_candidates:
                    replayed.add(event_id)
                SSE_EVENTS_SENT.inc()
                yield replay_frame
        elif last_event_id is not None:
            # The client is ahead of this process (it was served by a quicker one): what this
            # hub delivers up to there, the client already has.
            cursor = last_event_id
        # No end of its own: the stream lives as long as its session, and the hub closes it
        # when the session ends, the user is suspended or their role changes.
        last_write = time.monotonic()
        while True:
            for frame in subscriber.drain():
                out = _frame_for(frame, cursor, replayed)
                if out is None:
                    continue
                cursor = max(cursor, frame.event_id)
                SSE_EVENTS_SENT.inc()
                last_write = time.monotonic()
                yield out
            if subscriber.closed:
                yield b": %s\n\n" % subscriber.closed.encode()
                return
            now = time.monotonic()
            if now - last_write >= settings.sse_heartbeat_seconds:
                last_write = now
                yield PING
                continue
            wait = last_write + settings.sse_heartbeat_seconds - now
            await _wait(subscriber, wait)
    finally:
        hub.unsubscribe(subscriber)
        SSE_CONNECTIONS.dec()


def _frame_for(frame: Frame, cursor: int, replayed: set[int]) -> bytes | None:
    if frame.event_id > cursor:
        # Late or not, nothing this stream saw lies between the cursor and this id.
        return frame.wire
    if frame.late and frame.event_id not in replayed:
        return late_frame(frame)
    return None  # already sent (replay, or another process before a reconnect)


async def _wait(subscriber: Subscriber, seconds: float) -> None:
    try:
        async with asyncio.timeout(max(seconds, 0)):
            await subscriber.ready.wait()
    except TimeoutError:
        pass


async def _replay(
    hub: Hub, viewer: Viewer, after: int, until: int
) -> AsyncIterator[tuple[int, bytes]]:
    """The viewer's events in (after, until], oldest first, a page at a time."""
    sessions = hub.sessions

    def page(after: int) -> list[tuple[int, bytes]]:
        with sessions() as session:
            found = reads.replay_page(
                session, viewer=viewer, after=after, until=until, limit=REPLAY_PAGE
            )
        return [(m["event_id"], Frame.of(m).wire) for m in found]

    while True:
        frames = await anyio.to_thread.run_sync(page, after, limiter=hub.replay_limiter)
        for item in frames:
            yield item
        if len(frames) < REPLAY_PAGE:
            return
        after = frames[-1][0]
