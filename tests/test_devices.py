"""/v1/devices: register (upsert by token), list and remove; logout detaches a session's devices."""

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.models import (
    ApnsEnvironment,
    Device,
    EventType,
    OrderStatus,
    Platform,
    PushJob,
    PushStatus,
    Role,
    UserSession,
)
from app.services import devices as devices_service
from app.services.auth import Principal
from app.services.events import OrderState, record_event
from tests.builders import auth_headers, login_tokens, make_order, make_store, make_user

TOKEN = "a1" * 32


@pytest.fixture
def apns_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough APNs settings for the outbox to write pending jobs (nothing is sent here)."""
    settings = get_settings()
    for name, value in (
        ("apns_key_id", "K"),
        ("apns_team_id", "T"),
        ("apns_topic", "dev.zariz"),
        ("apns_key", "unused here"),
    ):
        monkeypatch.setattr(settings, name, value)


def register(client: TestClient, headers: dict[str, str], **body: object):  # type: ignore[no-untyped-def]
    return client.post("/v1/devices/register", json={"platform": "ios", **body}, headers=headers)


def device(db: Session, token: str) -> Device:
    db.expire_all()
    found = db.scalar(select(Device).where(Device.token == token))
    assert found is not None
    return found


class TestRegister:
    def test_new_token_is_created_for_the_caller(self, client: TestClient, db: Session) -> None:
        user = make_user(db)
        response = register(client, auth_headers(db, user), token=TOKEN, app_version="2.3")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "id": body["id"],
            "platform": "ios",
            "environment": "production",
            "created": True,
        }
        row = device(db, TOKEN)
        assert row.user_id == user.id
        assert row.app_version == "2.3"
        assert row.session_id is not None
        assert row.last_seen_at is not None

    def test_same_token_again_is_not_created_twice(self, client: TestClient, db: Session) -> None:
        headers = auth_headers(db, make_user(db))
        first = register(client, headers, token=TOKEN).json()
        second = register(client, headers, token=TOKEN.upper(), environment="sandbox").json()
        assert second["created"] is False
        assert second["id"] == first["id"]
        assert second["environment"] == "sandbox"
        assert len(db.scalars(select(Device)).all()) == 1

    def test_every_role_may_register(self, client: TestClient, db: Session) -> None:
        for n, role in enumerate((Role.COURIER, Role.STORE, Role.ADMIN)):
            response = register(
                client, auth_headers(db, make_user(db, role=role)), token=f"{n}" * 64
            )
            assert response.status_code == 200, role

    @pytest.mark.usefixtures("apns_configured")
    def test_known_token_moves_to_the_caller_and_is_enabled_again(
        self, client: TestClient, db: Session
    ) -> None:
        old_owner, new_owner = make_user(db), make_user(db)
        register(client, auth_headers(db, old_owner), token=TOKEN)
        row = device(db, TOKEN)
        old_session_id = row.session_id
        store = make_store(db)
        order = make_order(db, store=store, courier=old_owner, status="accepted")
        event = record_event(
            db,
            order=order,
            type=EventType.UPDATED,
            actor=None,
            before=OrderState(status=OrderStatus.ACCEPTED, courier_id=old_owner.id, in_pool=False),
        )
        db.commit()
        assert db.scalar(select(PushJob.status).where(PushJob.event_id == event.id)) == "pending"
        row.disabled_at = event.created_at
        db.commit()

        access, _ = login_tokens(db, new_owner)
        response = register(client, {"Authorization": f"Bearer {access}"}, token=TOKEN)
        assert response.json()["created"] is False
        moved = device(db, TOKEN)
        assert moved.user_id == new_owner.id
        assert moved.session_id is not None
        assert moved.session_id != old_session_id
        assert moved.disabled_at is None
        # What was queued for the previous owner's events does not reach the new owner.
        jobs = db.scalars(select(PushJob).where(PushJob.device_id == row.id)).all()
        assert [j.status for j in jobs] == [PushStatus.SKIPPED]

    def test_without_a_token_is_401(self, client: TestClient) -> None:
        response = client.post("/v1/devices/register", json={"platform": "ios", "token": TOKEN})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "body",
        [
            {"token": "zz" * 32},  # not hex
            {"token": "ab" * 8},  # too short
            {"token": "ab" * 101},  # too long
            {"token": "a" * 65},  # half a byte
            {"token": TOKEN, "platform": "android"},
            {"token": TOKEN, "environment": "staging"},
            {},
        ],
    )
    def test_invalid_body_is_422(
        self, client: TestClient, db: Session, body: dict[str, str]
    ) -> None:
        headers = auth_headers(db, make_user(db))
        response = client.post("/v1/devices/register", json=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


class TestList:
    def test_lists_only_the_callers_enabled_devices(self, client: TestClient, db: Session) -> None:
        me, other = make_user(db), make_user(db)
        mine = auth_headers(db, me)
        register(client, mine, token="01" * 32)
        register(client, mine, token="02" * 32, environment="sandbox")
        register(client, auth_headers(db, other), token="03" * 32)
        client.delete(f"/v1/devices/{'02' * 32}", headers=mine)
        response = client.get("/v1/devices", headers=mine)
        assert response.status_code == 200
        assert [d["token"] for d in response.json()] == ["01" * 32]
        assert response.json()[0]["environment"] == "production"

    def test_without_a_token_is_401(self, client: TestClient) -> None:
        assert client.get("/v1/devices").status_code == 401


class TestDelete:
    def test_own_device_is_disabled(self, client: TestClient, db: Session) -> None:
        headers = auth_headers(db, make_user(db))
        register(client, headers, token=TOKEN)
        response = client.delete(f"/v1/devices/{TOKEN}", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"ok": True}
        assert device(db, TOKEN).disabled_at is not None
        # Deleting again is harmless; registering again re-enables it.
        assert client.delete(f"/v1/devices/{TOKEN}", headers=headers).status_code == 200
        assert register(client, headers, token=TOKEN).json()["created"] is False
        assert device(db, TOKEN).disabled_at is None

    def test_another_users_device_is_404_and_untouched(
        self, client: TestClient, db: Session
    ) -> None:
        register(client, auth_headers(db, make_user(db)), token=TOKEN)
        response = client.delete(f"/v1/devices/{TOKEN}", headers=auth_headers(db, make_user(db)))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert device(db, TOKEN).disabled_at is None

    def test_unknown_token_is_404(self, client: TestClient, db: Session) -> None:
        headers = auth_headers(db, make_user(db))
        assert client.delete(f"/v1/devices/{TOKEN}", headers=headers).status_code == 404

    def test_without_a_token_is_401(self, client: TestClient) -> None:
        assert client.delete(f"/v1/devices/{TOKEN}").status_code == 401


class TestLogout:
    @pytest.mark.usefixtures("apns_configured")
    def test_logout_detaches_the_sessions_devices_and_they_get_no_pushes(
        self, client: TestClient, db: Session
    ) -> None:
        courier, admin = make_user(db), make_user(db, role=Role.ADMIN)
        access, refresh = login_tokens(db, courier)
        other_session = auth_headers(db, courier)
        register(client, {"Authorization": f"Bearer {access}"}, token="01" * 32)
        register(client, other_session, token="02" * 32)

        response = client.post("/v1/auth/logout", json={"refresh_token": refresh})
        assert response.status_code == 200
        logged_out, still_in = device(db, "01" * 32), device(db, "02" * 32)
        assert logged_out.disabled_at is not None
        assert logged_out.session_id is None
        assert still_in.disabled_at is None

        order = make_order(db, store=make_store(db), courier=courier, status="accepted")
        event = record_event(
            db,
            order=order,
            type=EventType.UPDATED,
            actor=Principal(user=admin, session_id=0, family_id=0, store_ids=()),
            before=OrderState(status=OrderStatus.ACCEPTED, courier_id=courier.id, in_pool=False),
        )
        db.commit()
        jobs = db.scalars(select(PushJob).where(PushJob.event_id == event.id)).all()
        assert [j.device_id for j in jobs] == [still_in.id]
        assert jobs[0].status == PushStatus.PENDING


def tokens(n: int, *, start: int = 0) -> list[str]:
    return [f"{i:064x}" for i in range(start + 1, start + n + 1)]


def enabled_tokens(db: Session, user_id: int) -> set[str]:
    db.expire_all()
    return set(
        db.scalars(
            select(Device.token).where(Device.user_id == user_id, Device.disabled_at.is_(None))
        )
    )


class TestCaps:
    def test_one_device_more_than_the_user_cap_disables_the_least_recently_seen(
        self, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "devices_max_per_user", 3)
        courier = make_user(db)
        first, second, third, fourth = tokens(4)
        for token in (first, second, third):
            assert register(client, auth_headers(db, courier), token=token).status_code == 200
        # Seen again: now the most recent, so `second` is the least recently seen.
        register(client, auth_headers(db, courier), token=first)
        assert register(client, auth_headers(db, courier), token=fourth).status_code == 200
        assert enabled_tokens(db, courier.id) == {first, third, fourth}
        assert device(db, second).session_id is None

    def test_one_device_more_than_the_session_cap_disables_that_sessions_oldest_only(
        self, client: TestClient, db: Session
    ) -> None:
        assert get_settings().devices_max_per_session == 2
        courier = make_user(db)
        this_session, other_session = auth_headers(db, courier), auth_headers(db, courier)
        elsewhere, oldest, newer, newest = tokens(4)
        register(client, other_session, token=elsewhere)
        for token in (oldest, newer, newest):
            assert register(client, this_session, token=token).status_code == 200
        assert enabled_tokens(db, courier.id) == {elsewhere, newer, newest}

    def test_another_users_devices_are_never_disabled_by_the_cap(
        self, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "devices_max_per_user", 1)
        courier, other = make_user(db), make_user(db)
        (mine,) = tokens(1)
        (theirs,) = tokens(1, start=100)
        register(client, auth_headers(db, other), token=theirs)
        register(client, auth_headers(db, courier), token=mine)
        assert enabled_tokens(db, other.id) == {theirs}
        assert enabled_tokens(db, courier.id) == {mine}

    @pytest.mark.usefixtures("apns_configured")
    def test_the_push_audience_of_one_user_stays_within_the_cap(
        self, client: TestClient, db: Session
    ) -> None:
        cap = get_settings().devices_max_per_user
        courier, admin = make_user(db), make_user(db, role=Role.ADMIN)
        registered = tokens(3 * cap)
        for pair in zip(registered[::2], registered[1::2], strict=True):
            headers = auth_headers(db, courier)  # a new session for every two tokens
            for token in pair:
                assert register(client, headers, token=token).status_code == 200
        assert len(enabled_tokens(db, courier.id)) == cap

        order = make_order(db, store=make_store(db), courier=courier, status="accepted")
        event = record_event(
            db,
            order=order,
            type=EventType.UPDATED,
            actor=Principal(user=admin, session_id=0, family_id=0, store_ids=()),
            before=OrderState(status=OrderStatus.ACCEPTED, courier_id=courier.id, in_pool=False),
        )
        db.commit()
        jobs = db.scalars(select(PushJob).where(PushJob.event_id == event.id)).all()
        assert len(jobs) == cap

    @pytest.mark.usefixtures("apns_configured")
    def test_a_device_disabled_by_the_cap_has_its_waiting_pushes_skipped(
        self, client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "devices_max_per_user", 1)
        courier, admin = make_user(db), make_user(db, role=Role.ADMIN)
        old, new = tokens(2)
        register(client, auth_headers(db, courier), token=old)
        order = make_order(db, store=make_store(db), courier=courier, status="accepted")
        event = record_event(
            db,
            order=order,
            type=EventType.UPDATED,
            actor=Principal(user=admin, session_id=0, family_id=0, store_ids=()),
            before=OrderState(status=OrderStatus.ACCEPTED, courier_id=courier.id, in_pool=False),
        )
        db.commit()
        register(client, auth_headers(db, courier), token=new)
        db.expire_all()
        (job,) = db.scalars(select(PushJob).where(PushJob.event_id == event.id)).all()
        assert job.status == PushStatus.SKIPPED


@pytest.mark.postgres
def test_concurrent_registrations_of_one_user_never_leave_more_than_the_cap(
    engine: Engine, committed: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "devices_max_per_user", 3)
    monkeypatch.setattr(get_settings(), "devices_max_per_session", 100)
    courier = make_user(committed)
    login_tokens(committed, courier)
    session_id = committed.scalar(select(UserSession.id).where(UserSession.user_id == courier.id))
    assert session_id is not None
    principal = Principal(user=courier, session_id=session_id, family_id=session_id, store_ids=())
    registered = tokens(8)
    barrier = threading.Barrier(len(registered))
    errors: list[BaseException] = []

    def run(token: str) -> None:
        with Session(bind=engine, expire_on_commit=False) as session:
            barrier.wait()
            try:
                devices_service.register_device(
                    session,
                    principal=principal,
                    platform=Platform.IOS,
                    token=token,
                    environment=ApnsEnvironment.PRODUCTION,
                    app_version=None,
                )
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in registered]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(enabled_tokens(committed, courier.id)) == 3
