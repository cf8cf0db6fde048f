"""Real servers for live-update tests: a committed scratch database, uvicorn processes, SSE readers.

The savepoint `db` fixture cannot serve here: another process must see what the test commits.
On Postgres the scratch database is a schema of the test database (search_path), so the rows
these tests commit never meet the savepoint tests; on SQLite it is a file of its own.
"""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import EventType, OrderStatus, Store, User
from app.db.session import build_engine, is_postgres
from app.services.events import OrderState, record_event
from tests.builders import make_order
from tests.conftest import TEST_DATABASE_URL, migrate

ROOT = Path(__file__).resolve().parents[1]
LIVE_SCHEMA = "zariz_live"


@dataclass
class LiveDatabase:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.engine)

    def session(self) -> Session:
        return self.sessions()

    def execute(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql), params).all()
            conn.commit()
            return list(rows)


def live_url(test_url: str, tmp: Path) -> str:
    if not test_url.startswith("postgresql"):
        return f"sqlite:///{tmp}/live.db"
    url = make_url(test_url)
    return url.update_query_dict({"options": f"-csearch_path={LIVE_SCHEMA}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="module")
def live_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDatabase]:
    """The committed database that uvicorn processes of a module serve, migrated for it.

    Not the `committed` fixture's tables (tests/live.py): a server outlives the tests of its
    module and remembers the event ids it has seen, so its database is never emptied under it.
    """
    url = live_url(TEST_DATABASE_URL, tmp_path_factory.mktemp("live-db"))
    admin = build_engine(TEST_DATABASE_URL) if url.startswith("postgresql") else None
    if admin is not None:
        # The schema name is shared by every module that uses it; each recreates it for itself.
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {LIVE_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {LIVE_SCHEMA}"))
            conn.commit()
    engine = build_engine(url)
    with engine.connect() as conn:
        migrate(conn)
    yield LiveDatabase(url, engine, sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {LIVE_SCHEMA} CASCADE"))
            conn.commit()
        admin.dispose()


def commit_event(
    db: LiveDatabase,
    *,
    store: Store,
    courier: User | None = None,
    status: str = "new",
    type: EventType = EventType.CREATED,
    was_in_pool: bool = False,
) -> int:
    """A new order and its event, committed: what the orders service does, minus the rules."""
    with db.session() as session:
        order = make_order(session, store=store, courier=courier, status=status)
        event = record_event(
            session,
            order=order,
            type=type,
            actor=None,
            before=OrderState(status=OrderStatus.NEW, courier_id=None, in_pool=True)
            if was_in_pool
            else None,
        )
        session.commit()
        return event.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> float:
        """Signals the server and returns how long it took to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started


def start_server(db_url: str, tmp: Path, **settings: str) -> LiveServer:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        # The test Postgres is shared and small (max_connections 100): a few each.
        "DB_POOL_SIZE": "3",
        "DB_MAX_OVERFLOW": "2",
        "SSE_HEARTBEAT_SECONDS": "0.5",
        "SSE_AUTH_RECHECK_SECONDS": "0.3",
        "SSE_RETRY_MS": "1500",
        "SSE_GAP_GRACE_SECONDS": "3",
        **{k.upper(): v for k, v in settings.items()},
    }
    env.pop("DATABASE_URL_DIRECT", None)
    for attempt in range(3):
        port = free_port()
        log_path = tmp / f"server-{port}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "30",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = LiveServer(process, f"http://127.0.0.1:{port}", log_path)
        if _wait_ready(server):
            return server
        server.stop(signal.SIGKILL)
        if attempt == 2:
            raise RuntimeError(f"server did not start:\n{server.log}")
    raise AssertionError("unreachable")


def _wait_ready(server: LiveServer, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if httpx.get(server.base_url + "/health/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


@dataclass
class Message:
    """One SSE block as received: its raw bytes and parsed fields."""

    raw: bytes
    id: int | None = None
    data: dict[str, Any] | None = None
    comment: str | None = None
    retry: int | None = None
    fields: list[str] = field(default_factory=list)


END = Message(raw=b"")


def parse_block(block: bytes) -> Message:
    message = Message(raw=block)
    for line in block.decode().split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        message.fields.append(name)
        if name == "":
            message.comment = value
        elif name == "id":
            message.id = int(value)
        elif name == "data":
            assert message.data is None, "one data line per message"
            message.data = json.loads(value)
        elif name == "retry":
            message.retry = int(value)
    return message


class SSEReader:
    """Reads one stream in a thread; the test takes parsed blocks off a queue."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        last_event_id: int | None = None,
        token_in_query: bool = False,
        query_last_event_id: int | None = None,
    ):
        self.url = base_url + "/v1/events/sse"
        self.params: dict[str, Any] = {}
        self.headers: dict[str, str] = {}
        if token_in_query:
            self.params["token"] = token
        else:
            self.headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = str(last_event_id)
        if query_last_event_id is not None:
            self.params["last_event_id"] = query_last_event_id
        self.blocks: queue.Queue[Message] = queue.Queue()
        self.response_headers: httpx.Headers | None = None
        self.status: int | None = None
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "stream did not open"

    def _run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
                client.stream("GET", self.url, params=self.params, headers=self.headers) as resp,
            ):
                self.status, self.response_headers = resp.status_code, resp.headers
                if resp.status_code != 200:
                    return
                buffer = b""
                for chunk in resp.iter_raw():
                    # The server sends `retry:` once the stream is subscribed: from here on
                    # nothing committed can be missed.
                    self._opened.set()
                    buffer += chunk
                    while b"\n\n" in buffer:
                        block, buffer = buffer.split(b"\n\n", 1)
                        self.blocks.put(parse_block(block))
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:
            pass
        finally:
            self._opened.set()
            self.blocks.put(END)

    def next(self, timeout: float = 10) -> Message:
        return self.blocks.get(timeout=timeout)

    def next_event(self, timeout: float = 10) -> Message:
        """The next block that carries an event (skips the retry hint and heartbeats)."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.blocks.get(timeout=max(deadline - time.monotonic(), 0.01))
            if block is END or block.data is not None:
                return block

    def events(self, n: int, timeout: float = 10) -> list[Message]:
        out = [self.next_event(timeout) for _ in range(n)]
        assert END not in out, "stream ended early"
        return out

    def wait_end(self, timeout: float = 10) -> list[Message]:
        """Blocks until the server ends the stream; returns what came before the end."""
        seen: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            block = self.blocks.get(timeout=max(deadline - time.monotonic(), 0.01))
            if block is END:
                return seen
            seen.append(block)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@contextmanager
def reading(base_url: str, token: str, **kwargs: Any) -> Iterator[SSEReader]:
    reader = SSEReader(base_url, token, **kwargs)
    try:
        yield reader
    finally:
        reader.close()
