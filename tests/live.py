"""A real uvicorn serving the app on a free loopback port, on a real (committed) database."""

import socket
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.db.base import Base
from app.db.session import is_postgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def truncate_all(engine: Engine) -> None:
    """Removes what a committing test wrote, so the rolled-back tests after it see an empty db."""
    with engine.begin() as conn:
        if is_postgres(conn):
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def committed(engine: Engine) -> Iterator[Session]:
    """The database that really commits, for threads, servers and workers that must see the data:
    a session whose commits are real, and every table emptied afterwards. (Push tests take new
    sessions on it through `live`; uvicorn processes serve `live_db`, tests/sse_live.py.)"""
    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        truncate_all(engine)


@pytest.fixture
def live_server(committed: Session, shared_app: FastAPI) -> Iterator[str]:
    """The session's app (tests/conftest.py) under uvicorn: a fresh app would build its routes
    again on its first requests (about 0.15 s of CPU per test). Its lifespan starts and stops
    with this server, as it does with each test's TestClient."""
    assert not shared_app.dependency_overrides, "a live server serves the committed database"
    port = free_port()
    config = uvicorn.Config(
        shared_app, host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)
