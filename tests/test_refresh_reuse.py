"""The refresh reuse window: a token presented twice at once rotates twice; later it is theft."""

import threading

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import UserSession
from tests.builders import login_tokens, make_user
from tests.test_auth import rotated_long_ago


def _refresh(client: TestClient | httpx.Client, token: str) -> httpx.Response:
    response: httpx.Response = client.post("/v1/auth/refresh", json={"refresh_token": token})
    return response


def _me(client: TestClient | httpx.Client, access: str) -> int:
    return client.get("/v1/auth/me", headers={"Authorization": f"Bearer {access}"}).status_code


def test_a_token_presented_again_within_the_window_gets_a_valid_pair_of_its_own(
    client: TestClient, db: Session
) -> None:
    _, refresh = login_tokens(db, make_user(db))
    first = _refresh(client, refresh)
    second = _refresh(client, refresh)  # the other tab, a moment later
    assert first.status_code == second.status_code == 200
    a, b = first.json(), second.json()
    assert a["refresh_token"] != b["refresh_token"]
    # Nobody was signed out: both tabs' tokens work and rotate on.
    for pair in (a, b):
        assert _me(client, pair["access_token"]) == 200
        assert _refresh(client, pair["refresh_token"]).status_code == 200


def test_reuse_after_the_window_still_revokes_the_whole_family(
    client: TestClient, db: Session
) -> None:
    _, refresh = login_tokens(db, make_user(db))
    first = _refresh(client, refresh).json()
    second = _refresh(client, refresh).json()  # within the window: fine
    rotated_long_ago(db, first["refresh_token"])
    assert _refresh(client, refresh).status_code == 401
    for pair in (first, second):
        assert _refresh(client, pair["refresh_token"]).status_code == 401
        assert _me(client, pair["access_token"]) == 401


def test_presenting_the_token_again_does_not_stretch_its_window(
    client: TestClient, db: Session
) -> None:
    _, refresh = login_tokens(db, make_user(db))
    first = _refresh(client, refresh).json()
    _refresh(client, refresh)
    # The window runs from the first rotation, however often the token came back since.
    rotated_long_ago(db, first["refresh_token"])
    assert _refresh(client, refresh).status_code == 401


def test_a_logged_out_family_cannot_be_revived_within_the_window(
    client: TestClient, db: Session
) -> None:
    _, refresh = login_tokens(db, make_user(db))
    rotated = _refresh(client, refresh).json()
    assert client.post(
        "/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]}
    ).json() == {"ok": True}
    assert _refresh(client, refresh).status_code == 401


def test_a_zero_window_treats_any_second_use_as_theft(
    client: TestClient, db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "refresh_reuse_window_seconds", 0)
    _, refresh = login_tokens(db, make_user(db))
    first = _refresh(client, refresh).json()
    assert _refresh(client, refresh).status_code == 401
    assert _refresh(client, first["refresh_token"]).status_code == 401


@pytest.mark.postgres
def test_two_tabs_refreshing_at_the_same_instant_both_stay_signed_in(
    live_server: str, committed: Session
) -> None:
    user = make_user(committed)
    _, refresh = login_tokens(committed, user)
    tabs = 4
    barrier = threading.Barrier(tabs)
    answers: list[httpx.Response] = []

    def tab() -> None:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            answers.append(_refresh(http, refresh))

    threads = [threading.Thread(target=tab) for _ in range(tabs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [200] * tabs, [r.text for r in answers]
    with httpx.Client(base_url=live_server, timeout=30) as http:
        for r in answers:
            assert _me(http, r.json()["access_token"]) == 200
            assert _refresh(http, r.json()["refresh_token"]).status_code == 200
    committed.expire_all()
    revoked = committed.scalars(
        select(UserSession.revoked_at).where(UserSession.user_id == user.id)
    ).all()
    assert all(r is None for r in revoked)
