"""Deadlocks, serialization failures and lock timeouts: retried, or 409, never "database down"."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.core.errors import TransactionConflict, lock_conflict
from app.main import create_app
from app.services.retry import retrying
from tests.builders import make_store

LOCK = text("SELECT id FROM stores WHERE id = :id FOR UPDATE")


def wait_until_blocked(engine: Engine, pid: int) -> None:
    """Test set-up only: returns once backend `pid` is waiting for a lock."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            )
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} never blocked")


class Deadlock:
    """Two transactions lock two rows in opposite orders; the one handed to lose() is the victim.

    The other side locks b, then waits for a (held by the victim) before the victim asks for b,
    so the cycle exists when the victim's short deadlock_timeout runs the check: Postgres aborts
    the victim, and the other side goes on and commits.
    """

    def __init__(self, engine: Engine, a: int, b: int):
        self.engine, self.a, self.b = engine, a, b
        self.other_done = threading.Event()
        self.other_error: BaseException | None = None

    def lose(self, execute: Callable[..., Any]) -> None:
        execute(text("SET LOCAL deadlock_timeout = '20ms'"))
        execute(LOCK, {"id": self.a})
        took_b = threading.Event()
        pid: list[int] = []

        def other() -> None:
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SET LOCAL deadlock_timeout = '30s'"))
                    pid.append(int(conn.scalar(text("SELECT pg_backend_pid()")) or 0))
                    conn.execute(LOCK, {"id": self.b})
                    took_b.set()
                    conn.execute(LOCK, {"id": self.a})
                    conn.commit()
            except BaseException as exc:  # surfaced by the test, not lost in the thread
                self.other_error = exc
                took_b.set()
            finally:
                self.other_done.set()

        threading.Thread(target=other, daemon=True).start()
        took_b.wait(30)
        wait_until_blocked(self.engine, pid[0])
        execute(LOCK, {"id": self.b})  # raises: this transaction is the victim

    def other_committed(self) -> bool:
        self.other_done.wait(30)
        return self.other_done.is_set() and self.other_error is None


@pytest.fixture
def two_rows(committed: Session) -> tuple[int, int]:
    return make_store(committed).id, make_store(committed).id


def serialization_failure(engine: Engine, a: int) -> None:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.execute(text("SELECT name FROM stores WHERE id = :id"), {"id": a})
        with engine.begin() as other:
            other.execute(text("UPDATE stores SET name = 'other' WHERE id = :id"), {"id": a})
        conn.execute(text("UPDATE stores SET name = 'mine' WHERE id = :id"), {"id": a})


def lock_timeout(engine: Engine, a: int) -> None:
    with engine.connect() as holder, engine.connect() as conn:
        holder.execute(LOCK, {"id": a})
        conn.execute(text("SET LOCAL lock_timeout = '10ms'"))
        conn.execute(LOCK, {"id": a})


@pytest.fixture
def client_with() -> Iterator[Callable[[Callable[[], None]], TestClient]]:
    """A real app with one extra route running the given database work."""
    clients: list[TestClient] = []

    def make(work: Callable[[], None]) -> TestClient:
        app = create_app()
        router = APIRouter()
        router.add_api_route("/collide", work, methods=["POST"])
        app.include_router(router)
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.mark.postgres
def test_a_real_deadlock_is_409_transaction_conflict_not_503(
    engine: Engine, two_rows: tuple[int, int], client_with: Callable[..., TestClient]
) -> None:
    deadlock = Deadlock(engine, *two_rows)

    def work() -> None:
        with engine.connect() as conn:
            deadlock.lose(conn.execute)

    response = client_with(work).post("/collide")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "transaction_conflict"
    assert response.headers["retry-after"] == "1"
    assert deadlock.other_committed()


@pytest.mark.postgres
@pytest.mark.parametrize("collide", [serialization_failure, lock_timeout])
def test_serialization_failures_and_lock_timeouts_are_409_too(
    engine: Engine,
    two_rows: tuple[int, int],
    client_with: Callable[..., TestClient],
    collide: Callable[[Engine, int], None],
) -> None:
    response = client_with(lambda: collide(engine, two_rows[0])).post("/collide")
    assert response.status_code == 409
    assert response.json()["code"] == "transaction_conflict"


@pytest.mark.postgres
def test_the_sqlstates_are_named_as_lock_conflicts(
    engine: Engine, two_rows: tuple[int, int]
) -> None:
    names = []
    for collide in (serialization_failure, lock_timeout):
        with pytest.raises(OperationalError) as caught:
            collide(engine, two_rows[0])
        names.append(lock_conflict(caught.value))
    assert names == ["serialization_failure", "lock_not_available"]


@pytest.mark.postgres
def test_retrying_runs_a_deadlock_victim_again_and_returns_its_result(
    engine: Engine, two_rows: tuple[int, int]
) -> None:
    deadlock = Deadlock(engine, *two_rows)
    runs: list[int] = []
    with Session(engine) as session:

        def attempt() -> str:
            runs.append(1)
            if len(runs) == 1:
                deadlock.lose(session.execute)
            session.execute(
                text("UPDATE stores SET name = 'retried' WHERE id = :id"), {"id": two_rows[0]}
            )
            session.commit()
            return "done"

        assert retrying(session, attempt) == "done"
        assert len(runs) == 2
        assert deadlock.other_committed()
        name = session.scalar(text("SELECT name FROM stores WHERE id = :id"), {"id": two_rows[0]})
        assert name == "retried"


@pytest.mark.postgres
def test_retrying_answers_409_when_every_attempt_loses(
    engine: Engine, two_rows: tuple[int, int]
) -> None:
    runs: list[int] = []
    with Session(engine) as session:

        def attempt() -> None:
            runs.append(1)
            Deadlock(engine, *two_rows).lose(session.execute)

        with pytest.raises(TransactionConflict):
            retrying(session, attempt, attempts=2)
    assert len(runs) == 2


def test_retrying_leaves_an_unreachable_database_to_the_503_handler() -> None:
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    runs: list[int] = []
    with Session(dead) as session:

        def attempt() -> None:
            runs.append(1)
            session.execute(text("SELECT 1"))

        with pytest.raises(OperationalError):
            retrying(session, attempt)
    assert runs == [1]
