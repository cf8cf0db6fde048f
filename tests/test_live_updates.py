"""GET /v1/events/sse against real uvicorn processes and a committed database."""

import asyncio
import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from sqlalchemy import text, update

from app.core.config import Settings
from app.core.security import create_access_token
from app.db.models import EventType, Role, User, UserSession, UserStatus
from app.services.events import record_event
from tests.builders import (
    PASSWORD,
    login_tokens,
    make_order,
    make_store,
    make_store_user,
    make_user,
)
from tests.conftest import TEST_DATABASE_URL
from tests.orders_helpers import ORDER_BODY
from tests.sse_live import (
    END,
    LiveDatabase,
    LiveServer,
    commit_event,
    parse_block,
    reading,
    start_server,
)

pytestmark = pytest.mark.slow

# On SQLite the server cannot hear this process's commits (the bus is in-process), so it polls;
# on Postgres a long poll proves the NOTIFY path carries the events.
POLL = "0.2" if not TEST_DATABASE_URL.startswith("postgresql") else "60"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="module")
def server(live_db: LiveDatabase, tmp: Path) -> Iterator[LiveServer]:
    # 200 streams of one admin below: the per-user stream cap (tested on short_token_server) is
    # not what these tests are about.
    server = start_server(live_db.url, tmp, sse_poll_seconds=POLL, sse_max_streams_per_user="250")
    yield server
    server.stop()


@pytest.fixture
def admin_token(live_db: LiveDatabase) -> str:
    with live_db.session() as s:
        return login_tokens(s, make_user(s, role=Role.ADMIN))[0]


class World:
    """Two stores with a user each, two couriers, an admin: committed in the live database."""

    def __init__(self, db: LiveDatabase):
        self.db = db
        with db.session() as s:
            self.store_a, self.store_b = make_store(s), make_store(s)
            self.user_a = make_store_user(s, store=self.store_a)
            self.user_b = make_store_user(s, store=self.store_b)
            self.courier, self.other_courier = make_user(s), make_user(s)
            self.admin = make_user(s, role=Role.ADMIN)
            self.tokens = {
                name: login_tokens(s, user)[0]
                for name, user in [
                    ("a", self.user_a),
                    ("b", self.user_b),
                    ("courier", self.courier),
                    ("other_courier", self.other_courier),
                    ("admin", self.admin),
                ]
            }


@pytest.fixture
def world(live_db: LiveDatabase) -> World:
    return World(live_db)


class TestWireFormat:
    def test_retry_first_then_id_and_one_data_line_and_no_event_line(
        self, server: LiveServer, world: World
    ) -> None:
        with reading(server.base_url, world.tokens["admin"]) as sse:
            assert sse.status == 200
            headers = sse.response_headers
            assert headers is not None
            assert headers["content-type"].startswith("text/event-stream")
            assert headers["cache-control"] == "no-cache"
            assert headers["x-accel-buffering"] == "no"
            assert sse.next().raw == b"retry: 1500"
            event_id = commit_event(world.db, store=world.store_a)
            message = sse.next_event()
            assert message.raw.startswith(b"id: %d\ndata: {" % event_id)
            assert message.fields == ["id", "data"]
            assert message.data is not None
            assert set(message.data) == {
                "type",
                "event_id",
                "order_id",
                "store_id",
                "courier_id",
                "status",
                "occurred_at",
                "pickup_address",
                "boxes_count",
                "created_at",
                "order",
            }
            assert message.data["event_id"] == event_id
            assert message.data["type"] == "order.created"
            assert message.data["order"]["recipient_first_name"] == "Noa"

    def test_idle_stream_sends_comment_heartbeats(self, server: LiveServer, world: World) -> None:
        with reading(server.base_url, world.tokens["a"]) as sse:
            assert sse.next().retry == 1500
            pings = [sse.next(timeout=3), sse.next(timeout=3)]
            assert [p.raw for p in pings] == [b": ping", b": ping"]

    def test_token_in_the_query_string_works_and_is_never_logged(
        self, server: LiveServer, world: World
    ) -> None:
        token = world.tokens["b"]
        with reading(server.base_url, token, token_in_query=True) as sse:
            event_id = commit_event(world.db, store=world.store_b)
            assert sse.next_event().id == event_id
        assert token not in server.log
        assert "token=" not in server.log


class TestReplay:
    @pytest.mark.parametrize("via", ["header", "query"])
    def test_reconnect_with_last_event_id_gets_exactly_the_missed_events_then_live_ones(
        self, server: LiveServer, world: World, via: str
    ) -> None:
        token = world.tokens["a"]
        with reading(server.base_url, token) as sse:
            seen = commit_event(world.db, store=world.store_a)
            assert sse.next_event().id == seen
        missed = [commit_event(world.db, store=world.store_a) for _ in range(5)]
        commit_event(world.db, store=world.store_b)  # out of scope: never replayed
        resume = {"last_event_id": seen} if via == "header" else {"query_last_event_id": seen}
        with reading(server.base_url, token, **resume) as sse:
            assert [m.id for m in sse.events(5)] == missed
            live = commit_event(world.db, store=world.store_a)
            assert sse.next_event().id == live

    def test_the_header_wins_over_the_query_parameter(
        self, server: LiveServer, world: World
    ) -> None:
        first = commit_event(world.db, store=world.store_a)
        second = commit_event(world.db, store=world.store_a)
        with reading(
            server.base_url, world.tokens["a"], last_event_id=first, query_last_event_id=0
        ) as sse:
            assert sse.next_event().id == second

    def test_the_newest_id_as_last_event_id_replays_nothing(
        self, server: LiveServer, world: World
    ) -> None:
        newest = [commit_event(world.db, store=world.store_a) for _ in range(2)][-1]
        with reading(server.base_url, world.tokens["a"], last_event_id=newest) as sse:
            live = commit_event(world.db, store=world.store_a)
            assert sse.next_event().id == live


class TestScope:
    def test_a_store_user_never_receives_another_stores_events(
        self, server: LiveServer, world: World
    ) -> None:
        with reading(server.base_url, world.tokens["a"]) as sse:
            start = commit_event(world.db, store=world.store_b)
            own = commit_event(world.db, store=world.store_a)
            assert sse.next_event().id == own
        with reading(server.base_url, world.tokens["a"], last_event_id=start - 1) as sse:
            replayed = sse.next_event()
            assert replayed.id == own
            assert replayed.data is not None
            assert replayed.data["store_id"] == world.store_a.id

    def test_a_courier_sees_pool_changes_without_recipient_details_and_own_orders_with_them(
        self, server: LiveServer, world: World
    ) -> None:
        db = world.db
        with reading(server.base_url, world.tokens["courier"]) as sse:
            pool = commit_event(db, store=world.store_a)
            message = sse.next_event()
            assert message.id == pool
            assert message.data is not None
            assert "order" not in message.data
            for secret in (b"Noa", b"Levi", b"+972501234567", b"Dizengoff"):
                assert secret not in message.raw
            commit_event(
                db,
                store=world.store_a,
                courier=world.other_courier,
                status="assigned",
                type=EventType.ASSIGNED,
            )
            mine = commit_event(
                db,
                store=world.store_b,
                courier=world.courier,
                status="assigned",
                type=EventType.ASSIGNED,
            )
            message = sse.next_event()
            assert message.id == mine, "another courier's assignment must not reach this one"
            assert message.data is not None
            assert message.data["order"]["phone"] == "+972501234567"

    def test_an_assignment_out_of_the_pool_reaches_other_couriers_without_details(
        self, server: LiveServer, world: World
    ) -> None:
        with reading(server.base_url, world.tokens["courier"]) as sse:
            left_pool = commit_event(
                world.db,
                store=world.store_a,
                courier=world.other_courier,
                status="assigned",
                type=EventType.ASSIGNED,
                was_in_pool=True,
            )
            message = sse.next_event()
            assert message.id == left_pool
            assert message.data is not None
            assert "order" not in message.data


class TestStreamEnds:
    @pytest.mark.parametrize("how", ["suspended", "session_revoked"])
    def test_the_stream_ends_when_the_user_is_suspended_or_the_session_revoked(
        self, server: LiveServer, world: World, how: str
    ) -> None:
        with reading(server.base_url, world.tokens["courier"]) as sse:
            assert sse.next().retry is not None
            with world.db.session() as s:
                if how == "suspended":
                    s.execute(
                        update(User)
                        .where(User.id == world.courier.id)
                        .values(status=UserStatus.SUSPENDED)
                    )
                else:
                    s.execute(
                        update(UserSession)
                        .where(UserSession.user_id == world.courier.id)
                        .values(revoked_at=world.courier.created_at)
                    )
                s.commit()
            started = time.monotonic()
            before_end = sse.wait_end(timeout=5)
            assert time.monotonic() - started < 5
            assert before_end[-1].comment == "session ended"
        response = httpx.get(
            server.base_url + "/v1/events/sse",
            headers={"Authorization": f"Bearer {world.tokens['courier']}"},
        )
        assert response.status_code == 401

    def test_the_stream_does_not_end_when_the_access_token_expires(
        self, server: LiveServer, world: World
    ) -> None:
        # Was: the stream ended at access-token expiry. DESIGN §6 now has it live as long as
        # its session (the web admin reconnects with the token it has and never refreshes).
        with world.db.session() as s:
            session_id = s.scalar(
                text("SELECT id FROM user_sessions WHERE user_id = :u"), {"u": world.admin.id}
            )
        short = create_access_token(
            user_id=world.admin.id,
            role="admin",
            session_id=session_id,
            store_ids=[],
            settings=Settings(access_token_ttl=1),
        )
        with reading(server.base_url, short) as sse:
            assert sse.next().retry is not None
            wait_until_expired(short)
            event_id = commit_event(world.db, store=world.store_a)
            assert sse.next_event().id == event_id


def wait_until_expired(token: str) -> None:
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    while time.time() <= expires + 0.5:
        time.sleep(0.1)


def api_login(server: LiveServer, user: User) -> tuple[str, int]:
    """A real login on the server (and its ACCESS_TOKEN_TTL): the access token, its session."""
    response = httpx.post(
        server.base_url + "/v1/auth/login",
        json={"identifier": user.email, "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return token, int(jwt.decode(token, options={"verify_signature": False})["session_id"])


@pytest.fixture(scope="module")
def short_token_server(live_db: LiveDatabase, tmp: Path) -> Iterator[LiveServer]:
    server = start_server(
        live_db.url,
        tmp,
        sse_poll_seconds=POLL,
        access_token_ttl="2",
        sse_max_streams_per_user="2",
    )
    yield server
    server.stop()


class TestStreamOutlivesAccessToken:
    def test_the_stream_keeps_delivering_after_expiry_and_a_reconnect_with_the_token_works(
        self, short_token_server: LiveServer, world: World
    ) -> None:
        base = short_token_server.base_url
        token, _ = api_login(short_token_server, world.admin)
        with reading(base, token) as sse:
            assert sse.next().retry is not None
            wait_until_expired(token)
            event_id = commit_event(world.db, store=world.store_a)
            assert sse.next_event().id == event_id
        headers = {"Authorization": f"Bearer {token}"}
        # Only the stream takes an expired token.
        assert httpx.get(base + "/v1/orders", headers=headers).status_code == 401
        assert httpx.get(base + "/v1/events", headers=headers).status_code == 401
        with reading(base, token, last_event_id=event_id) as again:
            assert again.status == 200
            assert again.next().retry is not None
            later = commit_event(world.db, store=world.store_a)
            assert again.next_event().id == later
        with reading(base, token, token_in_query=True) as by_query:
            assert by_query.status == 200

    @pytest.mark.parametrize("how", ["session_revoked", "refresh_expired", "user_suspended"])
    def test_an_expired_token_of_a_session_that_ended_is_401_and_its_stream_ends(
        self, short_token_server: LiveServer, world: World, how: str
    ) -> None:
        base = short_token_server.base_url
        token, session_id = api_login(short_token_server, world.courier)
        with reading(base, token) as sse:
            assert sse.next().retry is not None
            wait_until_expired(token)
            with world.db.session() as s:
                if how == "session_revoked":
                    s.execute(
                        update(UserSession)
                        .where(UserSession.id == session_id)
                        .values(revoked_at=world.courier.created_at)
                    )
                elif how == "refresh_expired":
                    s.execute(
                        update(UserSession)
                        .where(UserSession.id == session_id)
                        .values(expires_at=world.courier.created_at)
                    )
                else:
                    s.execute(
                        update(User)
                        .where(User.id == world.courier.id)
                        .values(status=UserStatus.SUSPENDED)
                    )
                s.commit()
            assert sse.wait_end(timeout=5)[-1].comment == "session ended"
        response = httpx.get(base + "/v1/events/sse", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"

    def test_an_expired_token_signed_with_another_key_is_401(
        self, short_token_server: LiveServer, world: World
    ) -> None:
        _, session_id = api_login(short_token_server, world.other_courier)
        forged = create_access_token(
            user_id=world.other_courier.id,
            role="courier",
            session_id=session_id,
            store_ids=[],
            settings=Settings(jwt_secret="another-secret-" + "y" * 40, access_token_ttl=-60),
        )
        response = httpx.get(
            short_token_server.base_url + "/v1/events/sse",
            headers={"Authorization": f"Bearer {forged}"},
        )
        assert response.status_code == 401


class TestStreamsPerUser:
    def test_one_stream_more_than_the_cap_ends_that_users_oldest_stream(
        self, short_token_server: LiveServer, world: World
    ) -> None:
        base = short_token_server.base_url
        token, _ = api_login(short_token_server, world.user_a)
        other, _ = api_login(short_token_server, world.user_b)
        with (
            reading(base, other) as other_stream,
            reading(base, token) as oldest,
            reading(base, token) as second,
        ):
            assert oldest.next().retry is not None
            with reading(base, token) as newest:
                assert oldest.wait_end(timeout=5)[-1].comment == "too many streams"
                event_id = commit_event(world.db, store=world.store_a)
                assert second.next_event().id == event_id
                assert newest.next_event().id == event_id
                other_id = commit_event(world.db, store=world.store_b)
                assert other_stream.next_event().id == other_id


def test_two_hundred_open_streams_do_not_slow_ordinary_requests(
    server: LiveServer, world: World
) -> None:
    async def scenario() -> None:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
        headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
        async with (
            httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as streams,
            httpx.AsyncClient(base_url=server.base_url, timeout=5) as plain,
        ):
            opened = []

            async def open_one() -> None:
                request = streams.build_request("GET", "/v1/events/sse", headers=headers)
                response = await streams.send(request, stream=True)
                assert response.status_code == 200
                chunks = response.aiter_raw()
                assert (await anext(chunks)).startswith(b"retry: ")
                opened.append((response, chunks))

            await asyncio.gather(*(open_one() for _ in range(200)))
            try:
                took = []
                for _ in range(5):
                    for path in ("/v1/auth/me", "/health/ready"):
                        started = time.monotonic()
                        response = await plain.get(path, headers=headers)
                        took.append(time.monotonic() - started)
                        assert response.status_code == 200
                # Streams hold no worker thread: requests are answered as on an idle server.
                # (Bounds are loose: the CI machine may be busy.)
                assert sorted(took)[len(took) // 2] < 0.5
                assert max(took) < 2
                event_id = await asyncio.to_thread(commit_event, world.db, store=world.store_a)

                async def receives(chunks: object) -> None:
                    buffer = b""
                    async for chunk in chunks:  # type: ignore[attr-defined]
                        buffer += chunk
                        if b"id: %d\n" % event_id in buffer:
                            return

                await asyncio.wait_for(
                    asyncio.gather(*(receives(chunks) for _, chunks in opened)), timeout=15
                )
            finally:
                for response, _ in opened:
                    await response.aclose()

    asyncio.run(scenario())


def test_sigterm_ends_open_streams_and_the_server_exits_promptly(
    live_db: LiveDatabase, tmp: Path, world: World
) -> None:
    own = start_server(live_db.url, tmp, sse_poll_seconds=POLL)
    try:
        with (
            reading(own.base_url, world.tokens["admin"]) as first,
            reading(own.base_url, world.tokens["a"]) as second,
        ):
            assert first.next().retry is not None
            assert second.next().retry is not None
            took = own.stop(signal.SIGTERM)
            assert own.process.returncode is not None
            # Without the hub closing them, open streams would hold it for the full 30 s.
            assert took < 8, f"shutdown took {took:.1f}s"
            for sse in (first, second):
                assert sse.wait_end(timeout=2)[-1].comment == "server shutting down"
    finally:
        own.stop(signal.SIGKILL)


def create_order(base_url: str, token: str) -> dict[str, Any]:
    response = httpx.post(
        base_url + "/v1/orders", json=ORDER_BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def quiet_server(live_db: LiveDatabase, tmp: Path) -> Iterator[LiveServer]:
    """No safety poll: an event reaches its streams only through the bus or NOTIFY."""
    server = start_server(live_db.url, tmp, sse_poll_seconds="60")
    yield server
    server.stop()


def test_an_order_created_through_the_api_reaches_streams_of_the_same_process_at_once(
    quiet_server: LiveServer, world: World
) -> None:
    with (
        reading(quiet_server.base_url, world.tokens["a"]) as store_stream,
        reading(quiet_server.base_url, world.tokens["courier"]) as courier_stream,
    ):
        order = create_order(quiet_server.base_url, world.tokens["a"])
        for sse, details in ((store_stream, True), (courier_stream, False)):
            message = sse.next_event(timeout=5)
            assert message.data is not None
            assert message.data["type"] == "order.created"
            assert message.data["order_id"] == order["id"]
            assert ("order" in message.data) is details


@pytest.mark.postgres
class TestAcrossProcesses:
    def test_an_order_created_through_one_process_reaches_a_stream_on_another(
        self, server: LiveServer, quiet_server: LiveServer, world: World
    ) -> None:
        with (
            reading(server.base_url, world.tokens["admin"]) as on_a,
            reading(quiet_server.base_url, world.tokens["a"]) as on_b,
        ):
            order = create_order(server.base_url, world.tokens["a"])
            for sse in (on_a, on_b):
                message = sse.next_event(timeout=5)
                assert message.data is not None
                assert message.data["order_id"] == order["id"]

    def test_out_of_order_commits_reach_the_client_once_each_in_id_order(
        self, server: LiveServer, world: World
    ) -> None:
        db = world.db
        with reading(server.base_url, world.tokens["a"]) as sse, db.session() as slow:
            order = make_order(slow, store=world.store_a)
            held = record_event(
                slow,
                order=order,
                type=EventType.CREATED,
                actor=None,
                before=None,
            )  # flushed: id allocated, transaction still open
            later = commit_event(db, store=world.store_a)
            assert later > held.id
            with pytest.raises(queue.Empty):
                sse.next_event(timeout=1)  # held back: the lower id may still commit
            slow.commit()
            got = [sse.next_event(timeout=5), sse.next_event(timeout=5)]
            assert [m.id for m in got] == [held.id, later]
            after = commit_event(db, store=world.store_a)
            assert sse.next_event(timeout=5).id == after

    def test_a_commit_later_than_the_grace_period_arrives_late_without_an_id_line(
        self, server: LiveServer, world: World
    ) -> None:
        db = world.db
        with reading(server.base_url, world.tokens["a"]) as sse, db.session() as slow:
            order = make_order(slow, store=world.store_a)
            held = record_event(
                slow,
                order=order,
                type=EventType.CREATED,
                actor=None,
                before=None,
            )
            later = commit_event(db, store=world.store_a)
            assert sse.next_event(timeout=8).id == later  # the grace period (3 s) ran out
            slow.commit()
            late = sse.next_event(timeout=5)
            # No id line: the client's Last-Event-ID stays at `later`, so a reconnect replays
            # neither this one nor `later`.
            assert late.fields == ["data"]
            assert late.data is not None
            assert late.data["event_id"] == held.id
        with reading(server.base_url, world.tokens["a"], last_event_id=later) as sse:
            after = commit_event(db, store=world.store_a)
            assert sse.next_event(timeout=5).id == after

    def test_a_rolled_back_event_id_does_not_hold_later_events_back_for_good(
        self, server: LiveServer, world: World
    ) -> None:
        db = world.db
        with reading(server.base_url, world.tokens["a"]) as sse:
            with db.session() as doomed:
                order = make_order(doomed, store=world.store_a)
                record_event(
                    doomed,
                    order=order,
                    type=EventType.CREATED,
                    actor=None,
                    before=None,
                )
                later = commit_event(db, store=world.store_a)
                doomed.rollback()
            assert sse.next_event(timeout=6).id == later

    def test_the_listener_reconnects_after_its_backend_is_killed(
        self, live_db: LiveDatabase, tmp: Path, world: World
    ) -> None:
        own = start_server(live_db.url, tmp, sse_poll_seconds="60")
        listeners = """
            SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'zariz-listener'
              AND query LIKE 'LISTEN%'
        """
        try:
            with reading(own.base_url, world.tokens["admin"]) as sse:
                before = {row.pid for row in live_db.execute(listeners)}
                assert before
                live_db.execute(
                    f"SELECT pg_terminate_backend(pid) FROM ({listeners}) AS l"  # noqa: S608
                )
                during = commit_event(world.db, store=world.store_a)
                assert sse.next_event(timeout=10).id == during  # caught up after reconnecting
                deadline = time.monotonic() + 10
                while not {row.pid for row in live_db.execute(listeners)} - before:
                    assert time.monotonic() < deadline, "listener did not reconnect"
                    time.sleep(0.1)
                after = commit_event(world.db, store=world.store_a)
                assert sse.next_event(timeout=5).id == after
        finally:
            own.stop()


def test_parse_block_rejects_two_data_lines() -> None:
    with pytest.raises(AssertionError):
        parse_block(b"data: {}\ndata: {}")
    assert parse_block(b": ping").comment == "ping"
    assert END.raw == b""
