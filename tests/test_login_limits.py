"""Attempt limits: counted before the password, bounded guessing, and no lock-out by strangers."""

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits import parse_many
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from tests.builders import PASSWORD, auth_headers, make_user
from tests.conftest import TEST_DATABASE_URL
from tests.sse_live import start_server

WRONG = "not the password"


def first_window(spec: str) -> int:
    return int(parse_many(spec)[0].amount)


ClientAt = Callable[[str], TestClient]


@pytest.fixture
def at(app: FastAPI) -> Iterator[ClientAt]:
    """Test clients that connect from the given address."""
    clients: dict[str, TestClient] = {}

    def client_at(address: str) -> TestClient:
        if address not in clients:
            clients[address] = TestClient(app, client=(address, 50000)).__enter__()
        return clients[address]

    yield client_at
    for c in clients.values():
        c.__exit__(None, None, None)


def web_admin_login(client: TestClient, email: str, password: str) -> httpx.Response:
    # What the web admin sends: JSON {identifier, password} to /v1/auth/login_password.
    response: httpx.Response = client.post(
        "/v1/auth/login_password", json={"identifier": email, "password": password}
    )
    return response


class TestNoLockOut:
    def test_three_typos_in_the_web_admin_then_the_right_password_signs_in(
        self, client: TestClient, db: Session
    ) -> None:
        admin = make_user(db, email="dispatch@example.com")
        # The web admin sends every failed attempt twice: three typos are six failed requests.
        for _ in range(6):
            assert web_admin_login(client, "dispatch@example.com", WRONG).status_code == 401
        response = web_admin_login(client, "dispatch@example.com", PASSWORD)
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == admin.id

    def test_a_stranger_hammering_from_another_address_does_not_lock_the_owner_out(
        self, at: ClientAt, db: Session
    ) -> None:
        make_user(db, email="owner@example.com")
        stranger = at("203.0.113.9")
        answers = [web_admin_login(stranger, "owner@example.com", WRONG) for _ in range(40)]
        assert answers[-1].status_code == 429
        # The owner has never signed in from here before, and still gets in.
        owner = web_admin_login(at("198.51.100.7"), "owner@example.com", PASSWORD)
        assert owner.status_code == 200, owner.text

    def test_many_strangers_exhaust_the_account_limit_but_not_a_familiar_address(
        self, at: ClientAt, db: Session, settings: Settings
    ) -> None:
        make_user(db, email="owner@example.com")
        home = at("198.51.100.7")
        assert web_admin_login(home, "owner@example.com", PASSWORD).status_code == 200
        per_address = first_window(settings.login_limit_per_identifier_client)
        needed = first_window(settings.login_limit_per_identifier) // per_address + 1
        for n in range(needed):
            bot = at(f"203.0.113.{n + 1}")
            for _ in range(per_address):
                web_admin_login(bot, "owner@example.com", WRONG)
        # Guessing is bounded: a new address is refused even with the right password...
        fresh = web_admin_login(at("192.0.2.50"), "owner@example.com", PASSWORD)
        assert fresh.status_code == 429
        assert int(fresh.headers["retry-after"]) >= 1
        # ...while the owner, from where they signed in before, is not.
        assert web_admin_login(home, "owner@example.com", PASSWORD).status_code == 200

    def test_a_successful_login_clears_the_count_at_that_address(
        self, client: TestClient, db: Session, settings: Settings
    ) -> None:
        make_user(db, email="owner@example.com")
        per_address = first_window(settings.login_limit_per_identifier_client)
        for _round in range(3):
            for _ in range(per_address - 1):
                assert web_admin_login(client, "owner@example.com", WRONG).status_code == 401
            assert web_admin_login(client, "owner@example.com", PASSWORD).status_code == 200


class TestGuessingIsBounded:
    def test_one_address_trying_many_accounts_is_refused(
        self, client: TestClient, settings: Settings
    ) -> None:
        limit = first_window(settings.login_limit_per_client)
        codes = [
            web_admin_login(client, f"user{n}@example.com", WRONG).status_code
            for n in range(limit + 1)
        ]
        assert codes[:limit] == [401] * limit
        assert codes[-1] == 429

    def test_an_unknown_identifier_is_limited_like_a_known_one(
        self, client: TestClient, settings: Settings
    ) -> None:
        limit = first_window(settings.login_limit_per_identifier_client)
        codes = [
            web_admin_login(client, "nobody@example.com", WRONG).status_code
            for _ in range(limit + 1)
        ]
        assert codes == [401] * limit + [429]

    def test_concurrent_guesses_are_counted_before_the_password_is_checked(
        self, live_server: str, committed: Session, settings: Settings
    ) -> None:
        user = make_user(committed, email="target@example.com")
        limit = first_window(settings.login_limit_per_identifier_client)
        barrier = threading.Barrier(40)
        codes: list[int] = []

        def guess() -> None:
            with httpx.Client(base_url=live_server, timeout=30) as http:
                barrier.wait()
                response = http.post(
                    "/v1/auth/login", json={"identifier": user.email, "password": WRONG}
                )
                codes.append(response.status_code)

        threads = [threading.Thread(target=guess) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Check-then-count let all 40 through to the password check; counted first, only the
        # limit's worth are evaluated.
        assert sorted(codes) == [401] * limit + [429] * (40 - limit)


class TestRegisterAndPasswordAreLimited:
    def test_register_from_one_address_is_limited(
        self, client: TestClient, settings: Settings
    ) -> None:
        limit = first_window(settings.register_limit_per_client)
        codes = [
            client.post(
                "/v1/auth/register",
                json={"name": "N", "email": f"new{n}@example.com", "password": "long enough pw"},
            ).status_code
            for n in range(limit + 1)
        ]
        assert codes == [201] * limit + [429]

    def test_guessing_the_current_password_is_limited(
        self, client: TestClient, db: Session, settings: Settings
    ) -> None:
        user = make_user(db)
        headers = auth_headers(db, user)
        limit = first_window(settings.password_change_limit_per_user)
        body = {"current_password": WRONG, "new_password": "a brand new password"}
        codes = [
            client.post("/v1/auth/password", json=body, headers=headers).status_code
            for _ in range(limit + 1)
        ]
        assert codes == [403] * limit + [429]
        right = {"current_password": PASSWORD, "new_password": "a brand new password"}
        assert client.post("/v1/auth/password", json=right, headers=headers).status_code == 429


class TestRegisterSaysNothingAboutWhoExists:
    @pytest.mark.parametrize("taken", ["email", "phone"])
    def test_a_taken_identifier_gets_the_same_answer_as_a_free_one(
        self, client: TestClient, db: Session, taken: str
    ) -> None:
        existing = make_user(db, email="taken@example.com", phone="+972501110000")
        free = {"email": "free@example.com", "phone": "+972502220000"}
        used = {"email": "taken@example.com", "phone": "+972501110000"}
        new = client.post(
            "/v1/auth/register",
            json={"name": "A", taken: free[taken], "password": "long enough pw"},
        )
        dup = client.post(
            "/v1/auth/register",
            json={"name": "A", taken: used[taken], "password": "long enough pw"},
        )
        assert new.status_code == dup.status_code == 201
        assert new.headers["content-type"] == dup.headers["content-type"]
        new_body, dup_body = new.json(), dup.json()
        assert new_body.keys() == dup_body.keys()
        assert {k: v for k, v in new_body.items() if k != taken} == {
            k: v for k, v in dup_body.items() if k != taken
        }
        db.refresh(existing)
        assert existing.name != "A"
        assert existing.status == "active"


# Redis is shared with other checkouts' test runs: a database of its own, unique identifiers,
# nothing flushed.
REDIS_URL = "redis://127.0.0.1:6379/13"


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip("no Redis at 127.0.0.1:6379")


@pytest.mark.slow
def test_first_concurrent_logins_on_a_fresh_redis_backed_server_are_not_500(
    engine: Engine, tmp_path: Path
) -> None:
    """A fresh process (nothing imported yet) answering 40 logins at once, limits in Redis."""
    _redis_or_skip()
    server = start_server(
        TEST_DATABASE_URL,
        tmp_path,
        rate_limit_storage=REDIS_URL,
        login_limit_per_client="1000/minute",
    )
    run = uuid.uuid4().hex
    try:
        barrier = threading.Barrier(40)
        codes: list[int] = []

        def attempt(n: int) -> None:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                barrier.wait()
                response = http.post(
                    "/v1/auth/login",
                    json={"identifier": f"nobody{n}-{run}@example.com", "password": WRONG},
                )
                codes.append(response.status_code)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [401] * 40, (codes, server.log[-3000:])
    finally:
        server.stop()
