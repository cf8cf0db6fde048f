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
