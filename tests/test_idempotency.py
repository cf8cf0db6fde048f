"""Idempotency-Key on creates and actions: replayed per user, refused when reused differently."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.models import IdempotencyKey, Order, OrderEvent, User
from app.schemas.orders import OrderCreate
from app.services.auth import Principal
from app.services.idempotency import KeyedRequest, fingerprint, run_order_action
from app.services.orders import create_order
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user
from tests.conftest import TEST_DATABASE_URL
from tests.live import free_port
from tests.orders_helpers import ORDER_BODY, World


def test_repeat_create_replays_the_stored_response(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_store, "Idempotency-Key": "abc"}
    first = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    second = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert db.query(Order).count() == 1


def test_key_order_of_json_does_not_matter(client: TestClient, db: Session, world: World) -> None:
    headers = {**world.h_store, "Idempotency-Key": "reordered"}
    client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    reordered = dict(reversed(list(ORDER_BODY.items())))
    assert client.post("/v1/orders", json=reordered, headers=headers).status_code == 201
    assert db.query(Order).count() == 1


def test_same_key_different_body_is_422_and_changes_nothing(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_store, "Idempotency-Key": "abc"}
    client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    response = client.post("/v1/orders", json={**ORDER_BODY, "boxes_count": 5}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert db.query(Order).count() == 1


def test_keys_are_scoped_to_the_user(client: TestClient, db: Session, world: World) -> None:
    client.post("/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "k"})
    other = client.post(
        "/v1/orders",
        json={**ORDER_BODY, "store_id": world.other_store.id},
        headers={**world.h_admin, "Idempotency-Key": "k"},
    )
    assert other.status_code == 201
    assert db.query(Order).count() == 2


def test_action_replay_renders_the_order_as_it_is_now_and_runs_nothing(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    headers = {**world.h_courier, "Idempotency-Key": "claim-1"}
    first = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    client.post(
        f"/v1/orders/{order.id}/status", json={"status": "picked_up"}, headers=world.h_courier
    )
    replay = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    # The key records the order, not a response: a replay shows the order's current state.
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["status"] == "picked_up"
    assert replay.json()["version"] == first.json()["version"] + 1
    assert db.query(OrderEvent).filter_by(order_id=order.id, type="order.accepted").count() == 1


def test_a_failed_request_is_not_stored_so_a_retry_runs(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, boxes_count=9)
    headers = {**world.h_courier, "Idempotency-Key": "retry"}
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 409
    world.courier.capacity_boxes = 20
    db.commit()
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 200


def test_overlong_key_is_422(client: TestClient, world: World) -> None:
    response = client.post(
        "/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "k" * 300}
    )
    assert response.status_code == 422


def test_a_key_expires_after_24_hours(client: TestClient, db: Session, world: World) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.db.base import utcnow
    from app.db.models import IdempotencyKey

    headers = {**world.h_store, "Idempotency-Key": "old"}
    client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    db.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    db.commit()
    again = client.post("/v1/orders", json={**ORDER_BODY, "boxes_count": 4}, headers=headers)
    assert again.status_code == 201
    assert db.query(Order).count() == 2
    assert db.query(IdempotencyKey).count() == 1


def test_the_key_records_the_order_it_produced_and_its_status_code(
    client: TestClient, db: Session, world: World
) -> None:
    response = client.post(
        "/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "rec"}
    )
    key = db.query(IdempotencyKey).one()
    assert (key.order_id, key.status_code) == (response.json()["id"], 201)


def test_create_replay_is_201_with_the_order_as_it_is_now(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_store, "Idempotency-Key": "now"}
    first = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    order_id = first.json()["id"]
    client.patch(f"/v1/orders/{order_id}", json={"notes": "ring twice"}, headers=world.h_store)
    replay = client.post("/v1/orders", json=ORDER_BODY, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert (replay.json()["id"], replay.json()["notes"]) == (order_id, "ring twice")
    assert db.query(Order).count() == 1


def test_a_keyed_no_op_action_stores_its_key_too(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    headers = {**world.h_courier, "Idempotency-Key": "again"}
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 200
    key = db.query(IdempotencyKey).one()
    assert (key.order_id, key.status_code) == (order.id, 200)


def test_a_keyed_action_on_a_missing_order_is_404_and_stores_no_key(
    client: TestClient, db: Session, world: World
) -> None:
    headers = {**world.h_courier, "Idempotency-Key": "ghost"}
    response = client.post("/v1/orders/987654/claim", headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert db.query(IdempotencyKey).count() == 0


def test_a_refused_keyed_action_stores_no_key(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, boxes_count=9)
    headers = {**world.h_courier, "Idempotency-Key": "refused"}
    response = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    assert response.json()["code"] == "capacity_exceeded"
    assert db.query(IdempotencyKey).count() == 0


def test_a_replay_answers_only_what_the_caller_may_see_now(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    headers = {**world.h_courier, "Idempotency-Key": "mine-then-not"}
    assert client.post(f"/v1/orders/{order.id}/claim", headers=headers).status_code == 200
    reassigned = client.post(
        f"/v1/orders/{order.id}/assign",
        json={"courier_id": world.other_courier.id},
        headers=world.h_admin,
    )
    assert reassigned.status_code == 200
    replay = client.post(f"/v1/orders/{order.id}/claim", headers=headers)
    assert replay.status_code == 404
    assert replay.json()["code"] == "not_found"
    assert "Levi" not in replay.text


def test_a_key_without_a_recorded_order_answers_409_in_progress(
    client: TestClient, db: Session, world: World
) -> None:
    # What migration 0005 leaves of a key whose outcome the old two-transaction code lost.
    db.add(
        IdempotencyKey(
            user_id=world.store_user.id,
            key="lost",
            method="POST",
            path="/v1/orders",
            request_hash=fingerprint("POST", "/v1/orders", json.dumps(ORDER_BODY).encode()),
            status_code=201,
        )
    )
    db.commit()
    response = client.post(
        "/v1/orders", json=ORDER_BODY, headers={**world.h_store, "Idempotency-Key": "lost"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    assert db.query(Order).count() == 0


def test_unkeyed_requests_store_nothing(client: TestClient, db: Session, world: World) -> None:
    response = client.post("/v1/orders", json=ORDER_BODY, headers=world.h_store)
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert db.query(IdempotencyKey).count() == 0


# --- Real commits on Postgres: one transaction, waits on the unique index, kill -9 ------------


@contextmanager
def commit_fails_when_a_key_is_recorded(engine: Engine) -> Iterator[None]:
    """A deferred constraint trigger: every COMMIT that writes a key's status code fails.

    It fires at COMMIT, after every flush of the action, whichever write comes last. The old
    design committed the action first and wrote the key's result in a second transaction: this
    trigger would have failed only that one, leaving the order behind a key stuck in progress.
    """
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT OR UPDATE ON idempotency_keys "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status_code IS NOT NULL) "
                "EXECUTE FUNCTION fail_commit()"
            )
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER fail_commit ON idempotency_keys"))
            conn.execute(text("DROP FUNCTION fail_commit()"))


def count(session: Session, model: type[Any]) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.postgres
def test_a_create_and_its_key_commit_together_or_not_at_all(
    engine: Engine, committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    headers = {
        **auth_headers(committed, make_store_user(committed, store=store)),
        "Idempotency-Key": "atomic",
    }
    with commit_fails_when_a_key_is_recorded(engine):
        failed = httpx.post(f"{live_server}/v1/orders", json=ORDER_BODY, headers=headers)
    assert failed.status_code == 500
    assert [count(committed, m) for m in (Order, OrderEvent, IdempotencyKey)] == [0, 0, 0]
    retry = httpx.post(f"{live_server}/v1/orders", json=ORDER_BODY, headers=headers)
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert [count(committed, m) for m in (Order, IdempotencyKey)] == [1, 1]


@pytest.mark.postgres
def test_a_claim_and_its_key_commit_together_or_not_at_all(
    engine: Engine, committed: Session, live_server: str
) -> None:
    order = make_order(committed, store=make_store(committed))
    courier = make_user(committed)
    headers = {**auth_headers(committed, courier), "Idempotency-Key": "atomic-claim"}
    with commit_fails_when_a_key_is_recorded(engine):
        failed = httpx.post(f"{live_server}/v1/orders/{order.id}/claim", headers=headers)
    assert failed.status_code == 500
    committed.expire_all()
    assert committed.get(Order, order.id).courier_id is None  # type: ignore[union-attr]
    assert [count(committed, m) for m in (OrderEvent, IdempotencyKey)] == [0, 0]
    retry = httpx.post(f"{live_server}/v1/orders/{order.id}/claim", headers=headers)
    assert (retry.status_code, retry.json()["courier_id"]) == (200, courier.id)
    assert count(committed, IdempotencyKey) == 1


class HeldKey:
    """A keyed create run by the real service on its own connection, paused inside its action.

    While paused, its key row is inserted but not committed: a duplicate blocks on the unique
    index. release() lets it create the order and commit.
    """

    def __init__(self, engine: Engine, user_id: int, store_id: int, key: str):
        self.inside, self._go = threading.Event(), threading.Event()
        self.order_id: int | None = None

        def run() -> None:
            with Session(engine, expire_on_commit=False) as session:
                user = session.get(User, user_id)
                assert user is not None
                principal = Principal(user=user, session_id=0, family_id=0, store_ids=(store_id,))

                def action(key_row: IdempotencyKey | None) -> Order:
                    self.inside.set()
                    self._go.wait(60)
                    data = OrderCreate.model_validate(ORDER_BODY)
                    return create_order(
                        session, principal=principal, data=data, idempotency_key=key_row
                    )

                outcome = run_order_action(
                    session,
                    principal=principal,
                    request=KeyedRequest(
                        key, "POST", "/v1/orders", json.dumps(ORDER_BODY).encode()
                    ),
                    status_code=201,
                    order_id=None,
                    action=action,
                )
                self.order_id = outcome.order.id

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self.inside.wait(30)

    def release(self) -> int | None:
        self._go.set()
        self._thread.join(60)
        return self.order_id


def post_in_thread(url: str, **kw: Any) -> Callable[[], httpx.Response]:
    box: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: box.append(httpx.post(url, timeout=60, **kw)))
    thread.start()

    def result() -> httpx.Response:
        thread.join(60)
        return box[0]

    return result


def wait_for_a_lock_waiter(engine: Engine) -> None:
    """Test set-up only: returns once some backend of this database waits for a lock."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("no request ever waited on the key")


@pytest.mark.postgres
def test_a_duplicate_waits_on_the_unique_index_then_replays_the_first(
    engine: Engine, committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    user = make_store_user(committed, store=store)
    headers = {**auth_headers(committed, user), "Idempotency-Key": "held"}
    held = HeldKey(engine, user.id, store.id, "held")
    duplicate = post_in_thread(f"{live_server}/v1/orders", json=ORDER_BODY, headers=headers)
    wait_for_a_lock_waiter(engine)
    first_id = held.release()
    answer = duplicate()
    assert answer.status_code == 201
    assert answer.headers["idempotent-replayed"] == "true"
    assert answer.json()["id"] == first_id
    assert count(committed, Order) == 1


@pytest.mark.postgres
def test_a_duplicate_answers_409_in_progress_when_the_first_holds_the_key_too_long(
    engine: Engine, committed: Session, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "idempotency_wait_seconds", 0.1)
    store = make_store(committed)
    user = make_store_user(committed, store=store)
    headers = {**auth_headers(committed, user), "Idempotency-Key": "slow"}
    held = HeldKey(engine, user.id, store.id, "slow")
    try:
        busy = httpx.post(f"{live_server}/v1/orders", json=ORDER_BODY, headers=headers)
    finally:
        first_id = held.release()
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_in_progress"
    later = httpx.post(f"{live_server}/v1/orders", json=ORDER_BODY, headers=headers)
    assert (later.status_code, later.json()["id"]) == (201, first_id)
    assert count(committed, Order) == 1


ZARIZ = Path(sys.executable).with_name("zariz")


class ZarizServer:
    """`zariz serve` as a real process on the test database, on a free port."""

    def __init__(self, workdir: Path):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "LOG_LEVEL": "WARNING"}
        # cwd is a temp dir so a developer's .env is never read; output goes to a file, not a
        # pipe nobody reads.
        self._log = (workdir / f"serve-{port}.log").open("wb")
        self.process = subprocess.Popen(
            [str(ZARIZ), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "zariz serve exited"
            try:
                if httpx.get(f"{self.base}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("zariz serve never answered")

    def kill_9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self._log.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_after_kill_9_mid_burst_every_keyed_retry_answers_its_order_exactly_once(
    committed: Session, tmp_path: Path
) -> None:
    store = make_store(committed)
    store_headers = auth_headers(committed, make_store_user(committed, store=store))
    courier = make_user(committed, capacity_boxes=1000)
    courier_headers = auth_headers(committed, courier)
    pool = [make_order(committed, store=store) for _ in range(20)]
    requests: dict[str, tuple[str, dict[str, Any]]] = {}
    for i in range(40):
        body = {**ORDER_BODY, "notes": f"burst {i}"}
        requests[f"create-{i}"] = ("/v1/orders", {"json": body, "headers": store_headers})
    for order in pool:
        requests[f"claim-{order.id}"] = (
            f"/v1/orders/{order.id}/claim",
            {"headers": courier_headers},
        )

    def send(base: str, key: str) -> httpx.Response | None:
        path, kw = requests[key]
        headers = {**kw["headers"], "Idempotency-Key": key}
        try:
            return httpx.post(f"{base}{path}", **{**kw, "headers": headers}, timeout=60)
        except httpx.TransportError:
            return None  # the server died under this request

    server = ZarizServer(tmp_path)
    first: dict[str, httpx.Response | None] = {}
    answers = threading.Semaphore(0)

    def burst(key: str) -> None:
        first[key] = send(server.base, key)
        if first[key] is not None:
            answers.release()

    threads = [threading.Thread(target=burst, args=(key,)) for key in requests]
    try:
        for thread in threads:
            thread.start()
        for _ in range(10):  # a sixth answered, the rest queued or half-way through
            assert answers.acquire(timeout=60)
        server.kill_9()
        for thread in threads:
            thread.join(90)
    finally:
        server.stop()
    assert any(r is None for r in first.values()), "the kill came after the whole burst"
    assert {r.status_code for r in first.values() if r is not None} <= {200, 201}

    again = ZarizServer(tmp_path)
    try:
        retries = {key: send(again.base, key) for key in requests}
    finally:
        again.stop()
    for key, retry in retries.items():
        assert retry is not None
        want = 201 if key.startswith("create-") else 200
        assert retry.status_code == want, (key, retry.text)
        answer = first[key]
        if answer is not None:  # answered before the kill: the retry is a replay of that order
            assert retry.headers.get("idempotent-replayed") == "true"
            assert retry.json()["id"] == answer.json()["id"]
    created = {retries[k].json()["id"] for k in requests if k.startswith("create-")}  # type: ignore[union-attr]
    assert len(created) == 40
    assert count(committed, Order) == 40 + len(pool)  # not one duplicate order
    assert count(committed, IdempotencyKey) == len(requests)
    assert committed.scalar(select(func.count()).where(IdempotencyKey.order_id.is_(None))) == 0
    accepted = committed.scalars(
        select(OrderEvent.order_id).where(OrderEvent.type == "order.accepted")
    ).all()
    assert sorted(accepted) == sorted(o.id for o in pool)  # each claim ran exactly once
