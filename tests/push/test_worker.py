"""The push worker against the fake APNs, on a database with real commits."""

import time
from collections import Counter
from datetime import timedelta

import httpx2 as httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import Device, Order, OrderEvent, PushStatus, UserSession, UserStatus
from tests.builders import auth_headers, login_tokens, make_order, make_store, make_user
from tests.fake_apns import ERROR, GONE, TOO_MANY, FakeApns
from tests.orders_helpers import ORDER_BODY
from tests.push.conftest import StartWorker
from tests.push.helpers import (
    courier_with_device,
    jobs,
    order_created,
    statuses,
    store_with_user,
    token_of,
    wait_until,
)

# Every APNs setting cleared: APNs is not configured at all (half a configuration is refused).
UNSET_APNS = ("apns_key", "apns_key_file", "apns_key_id", "apns_team_id", "apns_topic")


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def all_done(live: sessionmaker[Session]) -> bool:
    found = statuses(live)
    return bool(found) and not {PushStatus.PENDING, PushStatus.FAILED} & set(found)


class TestDelivery:
    def test_order_created_in_open_mode_pushes_each_active_courier_once_and_not_its_creator(
        self,
        live_server: str,
        live: sessionmaker[Session],
        fake_apns: FakeApns,
        start_worker: StartWorker,
    ) -> None:
        with live() as session:
            _store, creator = store_with_user(session)
            couriers = [make_user(session) for _ in range(5)]
            suspended = make_user(session)
            phones = {creator: [token_of(100)], suspended: [token_of(99)]}
            # A courier with two phones gets a push on each.
            phones.update({c: [token_of(n + 1)] for n, c in enumerate(couriers)})
            phones[couriers[0]].append(token_of(6))
            headers = {user: auth_headers(session, user) for user in phones}
        http = httpx.Client(base_url=live_server)
        for user, tokens in phones.items():
            for token in tokens:
                response = http.post(
                    "/v1/devices/register", json={"token": token}, headers=headers[user]
                )
                assert response.status_code == 200, response.text
        with live() as session:
            suspended.status = UserStatus.SUSPENDED
            session.add(suspended)
            session.commit()
        start_worker()

        created = http.post("/v1/orders", json=ORDER_BODY, headers=headers[creator])
        assert created.status_code == 201, created.text
        fake_apns.wait_for_requests(6)
        wait_until(lambda: all_done(live), what="jobs sent")
        time.sleep(0.2)  # anything extra would arrive now
        received = Counter(seen.token for seen in fake_apns.requests())
        assert received == {token_of(n): 1 for n in range(1, 7)}
        assert {seen.payload["order_id"] for seen in fake_apns.requests()} == {created.json()["id"]}
        assert {seen.payload["type"] for seen in fake_apns.requests()} == {"order.created"}
        assert statuses(live) == [PushStatus.SENT] * 6
        assert all(job.sent_at is not None for job in jobs(live))

    def test_500_then_200_is_delivered_once_after_a_retry(
        self, live: sessionmaker[Session], fake_apns: FakeApns, start_worker: StartWorker
    ) -> None:
        with live() as session:
            store, creator = store_with_user(session)
            courier_with_device(session, token_of(1))
            order_created(session, store=store, actor=creator)
        fake_apns.script(token_of(1), ERROR)
        sent_before, failed_before = (
            metric("zariz_push_sent_total"),
            metric("zariz_push_failed_total"),
        )
        start_worker()
        wait_until(lambda: all_done(live), what="job sent")
        [job] = jobs(live)
        assert (job.status, job.attempts) == (PushStatus.SENT, 2)
        assert [s.status for s in fake_apns.requests(token_of(1))] == [500, 200]
        assert metric("zariz_push_sent_total") == sent_before + 1
        assert metric("zariz_push_failed_total") == failed_before + 1

    def test_410_disables_the_device_and_it_is_never_pushed_again(
        self, live: sessionmaker[Session], fake_apns: FakeApns, start_worker: StartWorker
    ) -> None:
        with live() as session:
            store, creator = store_with_user(session)
            _, gone = courier_with_device(session, token_of(1))
            courier_with_device(session, token_of(2))
            order_created(session, store=store, actor=creator)
        fake_apns.script(token_of(1), GONE)
        start_worker()
        wait_until(lambda: all_done(live), what="jobs done")
        by_device = {job.device_id: job for job in jobs(live)}
        assert by_device[gone.id].status == PushStatus.DEAD
        assert by_device[gone.id].last_error == "410 Unregistered"
        with live() as session:
            assert session.get(Device, gone.id).disabled_at is not None  # type: ignore[union-attr]
            order_created(session, store=store, actor=creator)
        wait_until(lambda: len(fake_apns.requests(token_of(2))) == 2, what="second push")
        time.sleep(0.2)
        assert len(fake_apns.requests(token_of(1))) == 1
        assert len(jobs(live, device_id=gone.id)) == 1  # the outbox skips disabled devices

    def test_repeated_429_is_dead_after_the_last_attempt_with_the_error_kept(
        self, live: sessionmaker[Session], fake_apns: FakeApns, start_worker: StartWorker
    ) -> None:
        with live() as session:
            store, creator = store_with_user(session)
            courier_with_device(session, token_of(1))
            order_created(session, store=store, actor=creator)
        fake_apns.set_default(TOO_MANY)
        dead_before = metric("zariz_push_dead_total")
        start_worker()
        wait_until(lambda: all_done(live), what="job dead")
        [job] = jobs(live)
        assert (job.status, job.attempts) == (PushStatus.DEAD, 3)
        assert job.last_error == "429 TooManyRequests"
        assert len(fake_apns.requests(token_of(1))) == 3
        assert metric("zariz_push_dead_total") == dead_before + 1

    def test_a_device_disabled_after_the_job_was_written_is_skipped(
        self, live: sessionmaker[Session], fake_apns: FakeApns, start_worker: StartWorker
    ) -> None:
        with live() as session:
            store, creator = store_with_user(session)
            _, device = courier_with_device(session, token_of(1))
            order_created(session, store=store, actor=creator)
            device.disabled_at = utcnow()
            session.add(device)
            session.commit()
        start_worker()
        wait_until(lambda: all_done(live), what="job skipped")
        assert statuses(live) == [PushStatus.SKIPPED]
        assert fake_apns.requests() == []

    def test_unconfigured_apns_marks_due_jobs_skipped(
        self,
        live: sessionmaker[Session],
        fake_apns: FakeApns,
        start_worker: StartWorker,
        apns_settings: Settings,
    ) -> None:
        with live() as session:
            store, creator = store_with_user(session)
            courier_with_device(session, token_of(1))
            order_created(session, store=store, actor=creator)  # written pending
        start_worker(apns_settings.model_copy(update=dict.fromkeys(UNSET_APNS)))
        wait_until(lambda: all_done(live), what="job skipped")
        [job] = jobs(live)
        assert (job.status, job.last_error) == (PushStatus.SKIPPED, "APNs is not configured")
        assert fake_apns.requests() == []


class TestWaking:
    def test_a_committed_event_wakes_an_idle_worker_without_polling(
        self,
        live: sessionmaker[Session],
        fake_apns: FakeApns,
        start_worker: StartWorker,
        apns_settings: Settings,
    ) -> None:
        with live() as session:
            store, creator = store_with_user(session)
            courier_with_device(session, token_of(1))
        start_worker(apns_settings.model_copy(update={"push_poll_interval": 60.0}))
        time.sleep(0.3)  # idle, sleeping on its 60 s timer
        with live() as session:
            event = order_created(session, store=store, actor=creator)
        committed = time.time()
        [seen] = fake_apns.wait_for_requests(1, timeout=5)
        assert seen.payload["order_id"] == event.order_id
        assert seen.received_at - committed < 1.0


class TestInline:
    def test_inline_worker_runs_in_the_api_lifespan(
        self,
        live: sessionmaker[Session],
        fake_apns: FakeApns,
        apns_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        engine: object,
    ) -> None:
        from fastapi.testclient import TestClient

        import app.main

        monkeypatch.setattr(apns_settings, "push_worker", "inline")
        # The app's engine is the test database's; the tests' engine fixture owns the schema.
        monkeypatch.setattr(app.main, "get_engine", lambda: engine)
        with live() as session:
            store, creator = store_with_user(session)
            courier_with_device(session, token_of(1))
        with TestClient(app.main.create_app()):
            with live() as session:
                order_created(session, store=store, actor=creator)
            wait_until(lambda: all_done(live), what="inline worker sent the push")
        assert fake_apns.answered(token_of(1)) == 1
        with live() as session:
            assert session.scalar(select(Device.disabled_at)) is None


class TestHousekeeping:
    def test_the_worker_purges_long_expired_sessions_when_it_starts(
        self, live: sessionmaker[Session], start_worker: StartWorker
    ) -> None:
        with live() as session:
            user = make_user(session)
            _, refresh = login_tokens(session, user)
            expired_id = int(refresh.split(".")[0])
            session.execute(
                update(UserSession)
                .where(UserSession.id == expired_id)
                .values(expires_at=utcnow() - timedelta(days=31))
            )
            session.commit()
            live_id = int(login_tokens(session, user)[1].split(".")[0])

        def session_ids() -> set[int]:
            with live() as session:
                return set(session.scalars(select(UserSession.id)))

        start_worker()
        wait_until(lambda: expired_id not in session_ids(), what="the expired session purged")
        assert live_id in session_ids()

    def test_the_worker_releases_an_accepted_order_not_picked_up_in_time(
        self, live: sessionmaker[Session], start_worker: StartWorker, apns_settings: Settings
    ) -> None:
        with live() as session:
            store = make_store(session)
            courier = make_user(session)
            stale = make_order(session, store=store, status="accepted", courier=courier)
            stale.accepted_at = utcnow() - timedelta(minutes=25)
            fresh = make_order(session, store=store, status="accepted", courier=courier)
            fresh.accepted_at = utcnow()
            session.commit()
            stale_id, fresh_id = stale.id, fresh.id

        def status_of(order_id: int) -> str:
            with live() as session:
                return str(session.scalar(select(Order.status).where(Order.id == order_id)))

        start_worker(apns_settings.model_copy(update={"auto_release_after_minutes": 20}))
        wait_until(lambda: status_of(stale_id) == "new", what="the stale order released")
        assert status_of(fresh_id) == "accepted"
        with live() as session:
            event = session.scalars(select(OrderEvent).where(OrderEvent.order_id == stale_id)).one()
            assert (event.type, event.actor_role, event.reason) == (
                "order.released",
                "system",
                "not_picked_up_in_time",
            )
