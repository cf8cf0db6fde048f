"""The principal cache keeps lockout instant: a change through one process is refused by the next
request to another (Postgres: NOTIFY), and by the same process (both databases: the bus).

Each test first warms the cache (the same request twice on the server that must refuse next),
then changes the caller through the API of another process (or, for a role, which no endpoint
changes, through the ORM of this test process: yet another process), then sends the very next
request.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select

from app.db.models import Role, StoreMembership, StoreRole, User
from tests.builders import login_tokens, make_store, make_store_user, make_user
from tests.sse_live import LiveDatabase, LiveServer, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("principals")


@pytest.fixture(scope="module")
def server_a(live_db: LiveDatabase, tmp: Path) -> Iterator[LiveServer]:
    server = start_server(live_db.url, tmp, principal_cache_seconds="60")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_b(live_db: LiveDatabase, tmp: Path, server_a: LiveServer) -> Iterator[LiveServer]:
    """A second process on the same database (Postgres); on SQLite the same one, as it serves
    alone there (the in-process bus is its only channel)."""
    if not live_db.is_postgres:
        yield server_a
        return
    server = start_server(live_db.url, tmp, principal_cache_seconds="60")
    yield server
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(db: LiveDatabase, user: User) -> str:
    with db.session() as s:
        return login_tokens(s, user)[0]


def admin_token(db: LiveDatabase) -> str:
    with db.session() as s:
        return login_tokens(s, make_user(s, role=Role.ADMIN))[0]


def warm(server: LiveServer, token: str, path: str = "/v1/auth/me") -> httpx.Response:
    """The request twice: the first read fills the cache, the second is answered from it (the
    servers' TTL is 60 s, far longer than any test)."""
    first = httpx.get(server.base_url + path, headers=bearer(token))
    assert first.status_code == 200, first.text
    second = httpx.get(server.base_url + path, headers=bearer(token))
    assert second.status_code == 200, second.text
    return second


def test_suspended_courier_is_refused_by_the_other_process(
    live_db: LiveDatabase, server_a: LiveServer, server_b: LiveServer
) -> None:
    with live_db.session() as s:
        courier = make_user(s)
    token = token_of(live_db, courier)
    warm(server_b, token)

    changed = httpx.post(
        f"{server_a.base_url}/v1/admin/couriers/{courier.id}/status",
        json={"status": "suspended"},
        headers=bearer(admin_token(live_db)),
    )
    assert changed.status_code == 200, changed.text

    after = httpx.get(server_b.base_url + "/v1/auth/me", headers=bearer(token))
    assert after.status_code == 401  # suspension also ends the courier's sessions


def test_logout_ends_the_session_on_the_other_process(
    live_db: LiveDatabase, server_a: LiveServer, server_b: LiveServer
) -> None:
    with live_db.session() as s:
        courier = make_user(s)
    token = token_of(live_db, courier)
    warm(server_b, token, "/v1/orders?limit=5")

    out = httpx.post(server_a.base_url + "/v1/auth/logout", headers=bearer(token))
    assert out.status_code == 200, out.text

    after = httpx.get(server_b.base_url + "/v1/orders?limit=5", headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["detail"] == "Session has ended"


def test_suspended_store_is_refused_by_the_other_process(
    live_db: LiveDatabase, server_a: LiveServer, server_b: LiveServer
) -> None:
    with live_db.session() as s:
        store = make_store(s)
        owner = make_store_user(s, store=store)
    token = token_of(live_db, owner)
    warm(server_b, token)

    changed = httpx.post(
        f"{server_a.base_url}/v1/admin/stores/{store.id}/status",
        json={"status": "suspended"},
        headers=bearer(admin_token(live_db)),
    )
    assert changed.status_code == 200, changed.text

    after = httpx.get(server_b.base_url + "/v1/auth/me", headers=bearer(token))
    assert after.status_code == 401  # its only store suspended: the account's sessions end


def test_removed_membership_narrows_the_scope_on_the_other_process(
    live_db: LiveDatabase, server_a: LiveServer, server_b: LiveServer
) -> None:
    with live_db.session() as s:
        first, second = make_store(s), make_store(s)
        user = make_store_user(s, store=first)
        s.add(StoreMembership(user_id=user.id, store_id=second.id, role_in_store=StoreRole.STAFF))
        s.commit()
    token = token_of(live_db, user)
    assert warm(server_b, token).json()["store_ids"] == [first.id, second.id]

    removed = httpx.delete(
        f"{server_a.base_url}/v1/admin/stores/{second.id}/users/{user.id}",
        headers=bearer(admin_token(live_db)),
    )
    assert removed.status_code == 200, removed.text

    after = httpx.get(server_b.base_url + "/v1/auth/me", headers=bearer(token))
    assert after.status_code == 200
    assert after.json()["store_ids"] == [first.id]


@pytest.mark.postgres
def test_role_change_committed_elsewhere_is_seen_on_the_next_request(
    live_db: LiveDatabase, server_b: LiveServer
) -> None:
    """No endpoint changes a role: the change is committed by this test process's ORM session,
    which is one more process that the servers hear only through NOTIFY (on SQLite only the
    TTL would tell them: this one runs on Postgres alone)."""
    with live_db.session() as s:
        courier = make_user(s)
    token = token_of(live_db, courier)
    refused = httpx.get(server_b.base_url + "/v1/admin/couriers", headers=bearer(token))
    assert refused.status_code == 403
    warm(server_b, token)

    with live_db.session() as s:
        user = s.scalars(select(User).where(User.id == courier.id)).one()
        user.role = Role.ADMIN
        s.commit()

    allowed = httpx.get(server_b.base_url + "/v1/admin/couriers", headers=bearer(token))
    assert allowed.status_code == 200, allowed.text
