"""Workers that die, restart and run side by side: every job sent, none twice."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.models import PushStatus
from tests.conftest import IS_POSTGRES
from tests.fake_apns import KEY_ID, TEAM_ID, TOPIC, FakeApns, Reply
from tests.push.conftest import SigningKey, StartWorker
from tests.push.helpers import (
    courier_with_device,
    order_created,
    statuses,
    store_with_user,
    token_of,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]

Spawn = Callable[[], subprocess.Popen[bytes]]


def all_done(live: sessionmaker[Session]) -> bool:
    found = statuses(live)
    return bool(found) and not {PushStatus.PENDING, PushStatus.FAILED} & set(found)


@pytest.fixture
def spawn_worker(
    live: sessionmaker[Session],
    fake_apns: FakeApns,
    signing_key: SigningKey,
    apns_settings: Settings,
    tmp_path: Path,
) -> Iterator[Spawn]:
    """`zariz worker` in its own process, on the test database and the fake APNs.

    apns_settings configures this process too, so the outbox here writes pending jobs.
    """
    env = {
        **os.environ,  # DATABASE_URL, JWT_SECRET, ZARIZ_ENV from the test harness
        "APNS_KEY": signing_key.pem,
        "APNS_KEY_ID": KEY_ID,
        "APNS_TEAM_ID": TEAM_ID,
        "APNS_TOPIC": TOPIC,
        "APNS_URL": fake_apns.url,
        "PUSH_LEASE_SECONDS": "3",
        # On Postgres new work must wake the worker (NOTIFY, startup claim, lease expiry), not a
        # poll; with SQLite a worker in another process has only the poll to go by.
        "PUSH_POLL_INTERVAL": "30" if IS_POSTGRES else "0.3",
        "PUSH_BACKOFF_BASE": "0.02",
        "PUSH_BACKOFF_MAX": "0.1",
    }
    procs: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for n in range(len(procs)):
        # Shown by pytest when the test failed.
        print(f"--- worker {n} log ---\n" + (tmp_path / f"worker-{n}.log").read_text())


@pytest.mark.slow
def test_worker_killed_mid_batch_and_restarted_sends_every_job_and_none_twice(
    live: sessionmaker[Session], fake_apns: FakeApns, spawn_worker: Spawn
) -> None:
    tokens = [token_of(n) for n in range(1, 11)]
    with live() as session:
        store, creator = store_with_user(session)
        for token in tokens:
            courier_with_device(session, token)
        first_order = order_created(session, store=store, actor=creator).order_id

    worker = spawn_worker()
    wait_until(lambda: all_done(live), timeout=20, what="the first batch sent")
    # APNs turns slow: the next batch is in flight, unanswered, when the worker is killed.
    fake_apns.set_default(Reply(503, "ServiceUnavailable", hold=True))
    with live() as session:
        second_order = order_created(session, store=store, actor=creator).order_id
    fake_apns.wait_for_requests(20, timeout=10)
    worker.kill()  # SIGKILL: no cleanup, ten pushes in flight
    worker.wait(10)
    fake_apns.set_default(Reply())
    fake_apns.release()  # the held requests answer 503 to a connection nobody reads

    restarted = spawn_worker()
    wait_until(lambda: all_done(live), timeout=20, what="every job done after the restart")
    assert statuses(live) == [PushStatus.SENT] * 20
    answered = Counter(
        (seen.token, seen.payload["order_id"])
        for seen in fake_apns.requests()
        if seen.status == 200
    )
    assert answered == {(t, o): 1 for t in tokens for o in (first_order, second_order)}
    # The first batch, answered and recorded before the kill, was not sent again; the second
    # went out twice: once into the kill, once after the restart.
    sent = Counter((seen.token, seen.payload["order_id"]) for seen in fake_apns.requests())
    assert sent == {(t, o): n for t in tokens for o, n in ((first_order, 1), (second_order, 2))}

    if IS_POSTGRES:
        # Another process commits: only NOTIFY can wake the worker before its 30 s timer.
        with live() as session:
            order_created(session, store=store, actor=creator)
        committed = time.time()
        arrived = fake_apns.wait_for_requests(40, timeout=5)
        assert max(seen.received_at for seen in arrived) - committed < 2.0

    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(10) == 0


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_on_one_postgres_never_send_a_job_twice(
    live: sessionmaker[Session],
    fake_apns: FakeApns,
    start_worker: StartWorker,
    apns_settings: Settings,
) -> None:
    with live() as session:
        store, creator = store_with_user(session)
        for n in range(40):
            courier_with_device(session, token_of(n))
    fake_apns.set_default(Reply(delay=0.01))
    settings = apns_settings.model_copy(update={"push_concurrency": 8})
    start_worker(settings)
    start_worker(settings)
    with live() as session:
        orders = [order_created(session, store=store, actor=creator).order_id for _ in range(5)]
    wait_until(lambda: all_done(live), timeout=20, what="200 jobs done")
    assert statuses(live) == [PushStatus.SENT] * 200
    sent = Counter((seen.token, seen.payload["order_id"]) for seen in fake_apns.requests())
    assert set(sent.values()) == {1}
    assert {order for _, order in sent} == set(orders)
    assert len(sent) == 200
    # Each worker has its own HTTP/2 connection: both took part.
    assert len({seen.client for seen in fake_apns.requests()}) == 2


@pytest.mark.slow
def test_an_api_without_the_apns_key_writes_jobs_that_a_separate_worker_with_it_sends(
    live: sessionmaker[Session],
    fake_apns: FakeApns,
    spawn_worker: Spawn,
    apns_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This process plays the API with PUSH_WORKER=off and no APNs settings at all; the spawned
    # `zariz worker` has them. Whether APNs is configured is the worker's decision, not the API's.
    for name in ("apns_key", "apns_key_file", "apns_key_id", "apns_team_id", "apns_topic"):
        monkeypatch.setattr(apns_settings, name, None)
    with live() as session:
        store, creator = store_with_user(session)
        courier_with_device(session, token_of(1))
        order_created(session, store=store, actor=creator)
    assert statuses(live) == [PushStatus.PENDING]

    worker = spawn_worker()
    wait_until(lambda: all_done(live), timeout=20, what="the job sent")
    assert statuses(live) == [PushStatus.SENT]
    assert [seen.token for seen in fake_apns.requests()] == [token_of(1)]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
