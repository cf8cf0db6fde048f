"""Client calls about sessions and the stream: the web admin's sign-in, tabs and header.

6. the live stream outlives the access token; 7. two tabs refreshing one token;
8. sign-in after mistyped passwords; 9. `name` and `email` claims in the access token.
"""

import json
import threading
import time

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import Role
from tests.builders import PASSWORD, login_tokens, make_store, make_user
from tests.clients.conftest import World
from tests.clients.contract import WebAdmin, event_source, ipad_order_body


def test_sign_in_after_six_mistyped_passwords_then_the_right_one(
    client: TestClient, db: Session
) -> None:
    make_user(db, role=Role.ADMIN, email="typo@zariz.example")
    app = WebAdmin(client)
    for _ in range(6):
        response = client.post(
            "/v1/auth/login_password",
            json={"identifier": "typo@zariz.example", "password": "wrong password"},
        )
        assert response.status_code in (401, 429)
    app.login("typo@zariz.example", PASSWORD)
    assert app.claims()["role"] == "admin"


@pytest.mark.slow
def test_two_tabs_refreshing_one_token_at_once_both_stay_signed_in(
    committed: Session, live_server: str
) -> None:
    _, refresh = login_tokens(committed, make_user(committed, role=Role.ADMIN))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def tab() -> None:
        with httpx.Client(base_url=live_server) as http:
            barrier.wait()
            statuses.append(
                http.post("/v1/auth/refresh", json={"refresh_token": refresh}).status_code
            )

    threads = [threading.Thread(target=tab) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200, 200]


def test_header_shows_the_signed_in_name_and_email(web_admin: WebAdmin, world: World) -> None:
    # user-nav.tsx reads them from the token (parseJwt, no verification).
    claims = web_admin.claims()
    assert claims["name"] == world.admin.name
    assert claims["email"] == world.admin.email


@pytest.mark.slow
def test_live_stream_outlives_the_access_token_and_reconnects_with_it(
    committed: Session, live_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "access_token_ttl", 2)
    store = make_store(committed)
    token, _ = login_tokens(committed, make_user(committed, role=Role.ADMIN))
    with httpx.Client(base_url=live_server) as http, event_source(live_server, token) as es:
        time.sleep(3)  # the token is now expired; the stream must not care
        web = WebAdmin(
            http, access_token=login_tokens(committed, make_user(committed, role=Role.ADMIN))[0]
        )
        created = web.api("orders", "POST", {**ipad_order_body(), "store_id": store.id})
        message = json.loads(es.next().data)
        assert message["order_id"] == created["id"]
    # The web admin reconnects with the token it has, expired or not.
    with event_source(live_server, token, **{"Last-Event-ID": "0"}) as again:
        assert json.loads(again.next().data)["order_id"] == created["id"]
