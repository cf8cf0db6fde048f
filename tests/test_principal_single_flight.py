"""Concurrent first requests with one token share one read of its principal (a courier's two
simultaneous taps), and sharing never lets a request in that a committed change refuses.

Real threads, real commits, each thread with its own session as each request has. The leading
read is held just before it stores its result (its transaction already ended, so this holds no
lock on either database) until the other threads have joined it.
"""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import Unauthorized
from app.db.models import User, UserStatus
from app.services.auth import Principal, authenticate
from app.services.principal_cache import principals
from tests.builders import login_tokens, make_user

THREADS = 8
# Only a safety net against a hang: no assertion depends on how long anything takes.
PATIENCE = 30


@pytest.fixture
def listening(engine: Engine) -> Iterator[None]:
    """On Postgres the cache serves only while its process hears other processes' changes (the
    LISTEN loop of a server); this test process has none, so it says it does, for the test."""
    previous = principals._remote
    principals.hear_remote(lambda: True)
    yield
    principals.hear_remote(previous)


class Choreography:
    """Spies on the cache: counts the requests that joined a read in flight, and holds the
    leading read before it stores until `go` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.joined = threading.Semaphore(0)
        self.storing = threading.Event()
        self.go = threading.Event()
        real_lead, real_put = principals.lead, principals.put

        def lead(token: str) -> threading.Event | None:
            flight = real_lead(token)
            if flight is not None:
                self.joined.release()
            return flight

        def put(token: str, value: Any, *, token_expires_at: float, epoch: int) -> None:
            if not self.storing.is_set():
                self.storing.set()
                assert self.go.wait(PATIENCE)
            real_put(token, value, token_expires_at=token_expires_at, epoch=epoch)

        monkeypatch.setattr(principals, "lead", lead)
        monkeypatch.setattr(principals, "put", put)

    def wait_joined(self, count: int) -> None:
        for _ in range(count):
            assert self.joined.acquire(timeout=PATIENCE)


@pytest.fixture
def reads(engine: Engine) -> Iterator[list[str]]:
    """The statements that read a token's session and user: one per database lookup."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SELECT") and "JOIN user_sessions" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield statements
    event.remove(engine, "before_cursor_execute", count)


def authenticate_in_thread(engine: Engine, token: str, results: list[object]) -> threading.Thread:
    def run() -> None:
        with Session(bind=engine, expire_on_commit=False) as session:
            try:
                results.append(authenticate(session, token))
            except Unauthorized as exc:
                results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_concurrent_first_requests_with_one_token_make_one_read(
    committed: Session,
    engine: Engine,
    listening: None,
    reads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    courier = make_user(committed)
    token = login_tokens(committed, courier)[0]
    steps = Choreography(monkeypatch)
    results: list[object] = []
    threads = [authenticate_in_thread(engine, token, results) for _ in range(THREADS)]
    assert steps.storing.wait(PATIENCE)  # the leader has read, and holds before storing
    steps.wait_joined(THREADS - 1)  # every other request waits on that read
    steps.go.set()
    for thread in threads:
        thread.join(PATIENCE)

    assert len(reads) == 1
    assert len(results) == THREADS
    first = results[0]
    assert isinstance(first, Principal)
    assert first.user.id == courier.id
    assert all(result is first for result in results)


def test_a_change_committed_during_a_shared_read_refuses_who_waited_on_it(
    committed: Session,
    engine: Engine,
    listening: None,
    reads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    courier = make_user(committed)
    token = login_tokens(committed, courier)[0]
    steps = Choreography(monkeypatch)
    leader_result: list[object] = []
    leader = authenticate_in_thread(engine, token, leader_result)
    assert steps.storing.wait(PATIENCE)  # read while active; not stored yet

    user = committed.get(User, courier.id)
    assert user is not None
    user.status = UserStatus.SUSPENDED
    committed.commit()  # empties the cache (its epoch moves on) before the next request

    waiter_result: list[object] = []
    waiter = authenticate_in_thread(engine, token, waiter_result)
    steps.wait_joined(1)  # the next request found the read in flight and waits on it
    steps.go.set()
    leader.join(PATIENCE)
    waiter.join(PATIENCE)

    # The leader's read predates the suspension (as a request just before it would): answered,
    # but not stored, so nobody after is answered by it.
    assert isinstance(leader_result[0], Principal)
    assert principals.get(token, get_settings().principal_cache_seconds) is None
    # The request that started after the commit read for itself, and is refused.
    assert len(waiter_result) == 1
    assert isinstance(waiter_result[0], Unauthorized)
    assert len(reads) == 2
    with Session(bind=engine, expire_on_commit=False) as session, pytest.raises(Unauthorized):
        authenticate(session, token)
