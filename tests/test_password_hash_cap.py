"""The per-process cap on concurrent password hashes: every hash waits for a slot, then 503."""

import threading
import time
from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import security
from app.core.config import Settings
from app.db.models import Role, User
from tests.builders import PASSWORD, auth_headers, make_user


@pytest.fixture
def one_slot(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(settings, "password_hash_concurrency", 1)
    monkeypatch.setattr(settings, "password_hash_wait_seconds", 0.2)
    security.reset_hash_slots()
    security._dummy_hash()  # made once per process; not what these tests are about
    yield
    monkeypatch.undo()
    security.reset_hash_slots()


def _hashing_requests(db: Session) -> dict[str, Callable[[TestClient], httpx.Response]]:
    user = make_user(db, email="known@example.com")
    admin_headers = auth_headers(db, make_user(db, role=Role.ADMIN))
    user_headers = auth_headers(db, user)
    return {
        "login": lambda c: c.post(
            "/v1/auth/login", json={"identifier": "known@example.com", "password": PASSWORD}
        ),
        "unknown-user login": lambda c: c.post(
            "/v1/auth/login", json={"identifier": "nobody@example.com", "password": PASSWORD}
        ),
        "register": lambda c: c.post(
            "/v1/auth/register",
            json={"name": "N", "email": "new@example.com", "password": "long enough pw"},
        ),
        "password change": lambda c: c.post(
            "/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new password"},
            headers=user_headers,
        ),
        "admin creates a courier": lambda c: c.post(
            "/v1/admin/couriers",
            json={"name": "C", "email": "c@example.com", "password": "long enough pw"},
            headers=admin_headers,
        ),
    }


def test_every_hash_waits_for_a_slot_then_gets_503_server_busy(
    client: TestClient, db: Session, one_slot: None
) -> None:
    requests = _hashing_requests(db)
    users_before = db.scalar(select(func.count()).select_from(User))
    with security._hash_slot():  # the one slot is busy
        for name, send in requests.items():
            response = send(client)
            assert response.status_code == 503, name
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "server_busy"
            assert int(response.headers["retry-after"]) >= 1
    # Refused before anything changed.
    assert db.scalar(select(func.count()).select_from(User)) == users_before
    # And with the slot free again, each goes through.
    for name, send in requests.items():
        assert send(client).status_code in (200, 201, 401), name


def test_hashes_beyond_the_cap_wait_rather_than_run_at_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "password_hash_concurrency", 2)
    monkeypatch.setattr(settings, "password_hash_wait_seconds", 30.0)
    security.reset_hash_slots()
    running, most = 0, 0
    lock = threading.Lock()
    original = security._hasher

    class Counting:
        def hash(self, password: str) -> str:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                time.sleep(0.05)  # long enough for uncapped hashes to overlap
                return original().hash(password)
            finally:
                with lock:
                    running -= 1

    monkeypatch.setattr(security, "_hasher", lambda: Counting())
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        security.hash_password("long enough pw")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    security.reset_hash_slots()
    assert most == 2
