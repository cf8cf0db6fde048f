"""The console's live stream on a real server: signed in by cookie, resumed by Last-Event-ID."""

import json
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from sqlalchemy.orm import Session

from app.console.session import ACCESS_COOKIE
from app.db.models import Role
from tests.builders import auth_headers, login_tokens, make_store, make_store_user, make_user

pytestmark = pytest.mark.slow

NEW_ORDER = {
    "recipient_first_name": "Noa",
    "recipient_last_name": "Levi",
    "phone": "+972501234567",
    "street": "Dizengoff",
    "building_no": "100",
}


def next_data(lines: Iterator[str]) -> tuple[int | None, dict[str, object]]:
    event_id = None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            return event_id, json.loads(line[6:])
    raise AssertionError("the stream ended")


def test_a_reconnect_with_last_event_id_gets_what_it_missed(
    live_server: str, committed: Session
) -> None:
    store = make_store(committed)
    owner = make_store_user(committed, store=store)
    other = make_store(committed)
    access, _ = login_tokens(committed, owner)
    with httpx.Client(base_url=live_server, headers=auth_headers(committed, owner)) as api:
        first = api.post("/v1/orders", json=NEW_ORDER).json()["id"]
        second = api.post("/v1/orders", json=NEW_ORDER).json()["id"]
    with httpx.Client(
        base_url=live_server, headers=auth_headers(committed, make_user(committed, role=Role.ADMIN))
    ) as admin_api:
        admin_api.post("/v1/orders", json={**NEW_ORDER, "store_id": other.id})

    cookies = {ACCESS_COOKIE: access}
    with (
        httpx.Client(base_url=live_server, cookies=cookies, timeout=10) as browser,
        browser.stream("GET", "/console/events", headers={"Last-Event-ID": "0"}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        seen = [next_data(lines), next_data(lines)]
    # Both of this store's events, in order; the other store's order is not among them.
    assert [data["order_id"] for _, data in seen] == [first, second]
    first_id = seen[0][0]
    assert first_id is not None

    with (
        httpx.Client(base_url=live_server, cookies=cookies, timeout=10) as browser,
        browser.stream(
            "GET", "/console/events", headers={"Last-Event-ID": str(first_id)}
        ) as stream,
    ):
        _, data = next_data(stream.iter_lines())
    assert data["order_id"] == second


def test_the_stream_refuses_a_revoked_cookie(live_server: str, committed: Session) -> None:
    owner = make_store_user(committed, store=make_store(committed))
    access, refresh = login_tokens(committed, owner)
    with httpx.Client(base_url=live_server) as api:
        assert api.post("/v1/auth/logout", json={"refresh_token": refresh}).is_success
    with httpx.Client(base_url=live_server, cookies={ACCESS_COOKIE: access}) as browser:
        response = browser.get("/console/events", follow_redirects=False)
    assert response.status_code == 303
