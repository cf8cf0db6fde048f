"""Conditional GET on the order list and the events feed: an unchanged poll is a 304 that reads no
row, and every change a client could see changes the ETag."""

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Role, StoreMembership, StoreRole, User, UserStatus
from app.services import freshness
from tests.builders import auth_headers, make_order, make_store, make_user
from tests.conftest import IS_POSTGRES
from tests.orders_helpers import ORDER_BODY, World

LIST = "/v1/orders?limit=20"


@pytest.fixture
def listening(client: TestClient) -> TestClient:
    """On Postgres validators are issued only once the app's LISTEN loops are connected (they
    connect in the background when the app starts)."""
    deadline = time.monotonic() + 60
    while not freshness.usable(IS_POSTGRES) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert freshness.usable(IS_POSTGRES), "the app's LISTEN loops did not connect"
    return client


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def etag_of(client: TestClient, path: str, headers: dict[str, str]) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-cache"
    tag = response.headers["etag"]
    assert tag.startswith('W/"')
    return tag


def settle() -> None:
    """Waits out the LISTEN echo of the test's own commits.

    On Postgres this process hears its own commits twice: at once through the after-commit bus
    and a moment later as the NOTIFY comes back, which bumps the validators again. A tag taken
    between the two is honestly stale by the time of the next poll (the product errs towards a
    200), so a test that wants a 304 takes its tag once the echoes are in. SQLite has no LISTEN
    loop, so no echo to wait for."""
    if not IS_POSTGRES:
        return
    last = freshness.generation()
    quiet = 0
    deadline = time.monotonic() + 10
    while quiet < 3 and time.monotonic() < deadline:  # waiting for the echo, not timing it
        time.sleep(0.05)
        now = freshness.generation()
        quiet = quiet + 1 if now == last else 0
        last = now


def holding_etag(client: TestClient, path: str, headers: dict[str, str]) -> str:
    """A tag that a repeated poll answers with a 304 (retried if an echo lands in between)."""
    for _attempt in range(20):
        settle()
        tag = etag_of(client, path, headers)
        if unchanged(client, path, headers, tag):
            return tag
    raise AssertionError(f"{path}: never a 304 for an unchanged poll")


def unchanged(client: TestClient, path: str, headers: dict[str, str], tag: str) -> bool:
    response = client.get(path, headers={**headers, "If-None-Match": tag})
    assert response.status_code in (200, 304), response.text
    if response.status_code == 304:
        assert response.content == b""
        if tag.startswith('W/"') and "," not in tag:
            assert response.headers["etag"] == tag
        assert response.headers["cache-control"] == "private, no-cache"
    return response.status_code == 304


@pytest.mark.parametrize("path", [LIST, "/v1/orders", "/v1/events?after=0"])
def test_an_unchanged_poll_is_a_304_that_reads_no_row(
    listening: TestClient, world: World, db: Session, statements: list[str], path: str
) -> None:
    make_order(db, store=world.store)
    tag = holding_etag(listening, path, world.h_courier)
    statements.clear()
    assert unchanged(listening, path, world.h_courier, tag)
    # Authenticated from the principal cache, answered from the validator: not one statement.
    assert statements == []
    # A different query is a different resource.
    assert not unchanged(
        listening, path + ("&" if "?" in path else "?") + "x=1", world.h_courier, tag
    )


def test_another_caller_never_gets_a_304_for_someone_elses_tag(
    listening: TestClient, world: World
) -> None:
    tag = holding_etag(listening, LIST, world.h_store)
    assert not unchanged(listening, LIST, world.h_other_store, tag)
    assert not unchanged(listening, LIST, world.h_courier, tag)


def test_if_none_match_lists_and_star(listening: TestClient, world: World) -> None:
    tag = holding_etag(listening, LIST, world.h_courier)
    assert unchanged(listening, LIST, world.h_courier, f'W/"other", {tag}')
    assert unchanged(listening, LIST, world.h_courier, tag.removeprefix("W/"))
    assert unchanged(listening, LIST, world.h_courier, "*")
    assert not unchanged(listening, LIST, world.h_courier, 'W/"stale"')


def _create(client: TestClient, world: World) -> int:
    response = client.post("/v1/orders", json=ORDER_BODY, headers=world.h_store)
    assert response.status_code == 201, response.text
    order_id: int = response.json()["id"]
    return order_id


Change = Callable[[TestClient, World, Session, int], None]


def _claim(client: TestClient, world: World, _db: Session, order_id: int) -> None:
    assert client.post(f"/v1/orders/{order_id}/claim", headers=world.h_courier).status_code == 200


def _assign(client: TestClient, world: World, _db: Session, order_id: int) -> None:
    body = {"courier_id": world.other_courier.id}
    response = client.post(f"/v1/orders/{order_id}/assign", json=body, headers=world.h_admin)
    assert response.status_code == 200, response.text


def _edit(client: TestClient, world: World, _db: Session, order_id: int) -> None:
    response = client.patch(f"/v1/orders/{order_id}", json={"notes": "ring"}, headers=world.h_store)
    assert response.status_code == 200, response.text


def _delete(client: TestClient, world: World, _db: Session, order_id: int) -> None:
    assert client.delete(f"/v1/orders/{order_id}", headers=world.h_admin).status_code == 200


def _store_renamed(client: TestClient, world: World, db: Session, _order_id: int) -> None:
    world.store.name = "Renamed"  # shown in every order of the store (store_name)
    db.commit()


def _courier_renamed(client: TestClient, world: World, db: Session, _order_id: int) -> None:
    courier = db.get(User, world.courier.id)
    assert courier is not None
    courier.name = "New Name"  # shown as courier_name in every order they hold
    db.commit()


@pytest.mark.parametrize("change", [_claim, _assign, _edit, _delete, _store_renamed])
@pytest.mark.parametrize("viewer", ["h_courier", "h_store", "h_admin"])
@pytest.mark.parametrize("path", [LIST, "/v1/orders", "/v1/events?after=0"])
def test_every_visible_change_changes_the_etag(
    listening: TestClient, world: World, db: Session, change: Change, viewer: str, path: str
) -> None:
    order_id = _create(listening, world)
    headers: dict[str, str] = getattr(world, viewer)
    tag = etag_of(listening, path, headers)
    change(listening, world, db, order_id)
    assert not unchanged(listening, path, headers, tag)
    # And the new answer's tag holds until the next change.
    holding_etag(listening, path, headers)


def test_a_courier_rename_changes_the_etag(
    listening: TestClient, world: World, db: Session
) -> None:
    order_id = _create(listening, world)
    _claim(listening, world, db, order_id)
    tag = etag_of(listening, "/v1/orders", world.h_store)
    _courier_renamed(listening, world, db, order_id)
    assert not unchanged(listening, "/v1/orders", world.h_store, tag)


def test_a_membership_change_changes_the_store_users_etag(
    listening: TestClient, world: World, db: Session
) -> None:
    third = make_store(db)
    make_order(db, store=third)
    tag = etag_of(listening, "/v1/orders", world.h_store)
    db.add(
        StoreMembership(
            user_id=world.store_user.id, store_id=third.id, role_in_store=StoreRole.STAFF
        )
    )
    db.commit()
    assert not unchanged(listening, "/v1/orders", world.h_store, tag)


def test_suspension_is_refused_not_answered_304(
    listening: TestClient, world: World, db: Session
) -> None:
    courier = make_user(db, role=Role.COURIER)
    headers = auth_headers(db, courier)
    tag = etag_of(listening, LIST, headers)
    courier.status = UserStatus.SUSPENDED
    db.commit()
    response = listening.get(LIST, headers={**headers, "If-None-Match": tag})
    assert response.status_code == 401


def test_an_order_turning_late_changes_the_etag(listening: TestClient, world: World) -> None:
    """`late` flips when deliver_before passes, with no commit: the passed deadline counts as a
    change, so the poll that would now read `late: true` is a 200, not a 304."""
    due = utcnow() + timedelta(seconds=5)
    made = listening.post(
        "/v1/orders", json={**ORDER_BODY, "deliver_before": due.isoformat()}, headers=world.h_store
    )
    assert made.status_code == 201, made.text
    tag = holding_etag(listening, LIST, world.h_store)
    while utcnow() <= due:  # waiting for the clock, not asserting a time
        time.sleep(0.1)
    response = listening.get(LIST, headers={**world.h_store, "If-None-Match": tag})
    assert response.status_code == 200
    (order,) = [o for o in response.json() if o["id"] == made.json()["id"]]
    assert order["late"] is True
    assert unchanged(listening, LIST, world.h_store, response.headers["etag"])
