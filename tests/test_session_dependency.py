"""The request session dependency: opened without I/O, closed so no connection is ever kept."""

import anyio
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.api import deps


@pytest.fixture
def sessions(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
    monkeypatch.setattr(deps, "get_sessionmaker", lambda: factory)
    return factory


def _request(work: str) -> Session:
    async def run() -> Session:
        dependency = deps.get_session()
        session = await anext(dependency)
        if work != "none":
            await anyio.to_thread.run_sync(session.execute, text("SELECT 1"))
        if work == "committed":
            await anyio.to_thread.run_sync(session.commit)
        await dependency.aclose()
        return session

    return anyio.run(run)


@pytest.mark.parametrize("work", ["none", "committed", "left_open"])
def test_get_session_returns_every_connection_to_the_pool(
    sessions: sessionmaker[Session], engine: Engine, work: str
) -> None:
    before = engine.pool.checkedout()  # type: ignore[attr-defined]
    session = _request(work)
    assert not session.in_transaction()
    assert engine.pool.checkedout() == before  # type: ignore[attr-defined]


def test_request_sessions_never_outnumber_the_threadpool(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # More sessions than threads could leave every thread waiting for a connection held by a
    # request that waits for a thread; the extra request must wait before opening a session.
    monkeypatch.setattr(deps, "get_settings", lambda: type("S", (), {"threadpool_size": 2}))
    opened: list[Session] = []
    release = anyio.Event()

    async def request() -> None:
        dependency = deps.get_session()
        opened.append(await anext(dependency))
        await release.wait()
        await dependency.aclose()

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(request)
            await anyio.wait_all_tasks_blocked()
            assert len(opened) == 2
            release.set()
        assert len(opened) == 3

    anyio.run(run)
