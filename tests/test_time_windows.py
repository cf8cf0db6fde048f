"""Time windows on orders: validation, `late` in every read model, due_before and sort=due."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import EventType, Order, OrderEvent
from app.realtime.reads import detailed_messages
from tests.builders import make_order
from tests.orders_helpers import ORDER_BODY, World

WINDOW = ("pickup_after", "pickup_before", "deliver_after", "deliver_before")


def at(**delta: float) -> str:
    return (utcnow() + timedelta(**delta)).isoformat()


# The validation table's times: one base, so "the same instant" is the same.
BASE = utcnow().replace(microsecond=0)


def fixed(**delta: float) -> str:
    return (BASE + timedelta(**delta)).isoformat()


def names_field(response: Response, field: str) -> bool:
    body = response.json()
    locs = [err["loc"][-1] for err in body.get("errors") or []]
    return field in locs or body["detail"].startswith(field)


def create(client: TestClient, headers: dict[str, str], **fields: object) -> Response:
    return client.post("/v1/orders", json={**ORDER_BODY, **fields}, headers=headers)


def set_windows(db: Session, order_id: int, **values: datetime | None) -> None:
    """Backdates a window as if the order had been created earlier (the API refuses the past)."""
    db.execute(update(Order).where(Order.id == order_id).values(**values))
    db.commit()


def csv_rows(client: TestClient, headers: dict[str, str]) -> list[dict[str, str]]:
    response = client.get("/v1/orders/export.csv", headers=headers)
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


class TestCreateValidation:
    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            ({"deliver_before": "2030-01-01T10:00:00"}, "deliver_before"),  # naive: whose 10:00?
            ({"pickup_after": "tomorrow"}, "pickup_after"),
            ({"deliver_after": "9999-12-31T23:00:00-14:00"}, "deliver_after"),
            ({"pickup_after": fixed(hours=2), "pickup_before": fixed(hours=1)}, "pickup_before"),
            ({"pickup_after": fixed(hours=1), "pickup_before": fixed(hours=1)}, "pickup_before"),
            ({"deliver_after": fixed(hours=3), "deliver_before": fixed(hours=2)}, "deliver_before"),
            ({"pickup_after": fixed(hours=3), "deliver_before": fixed(hours=2)}, "pickup_after"),
            ({"pickup_before": fixed(hours=3), "deliver_before": fixed(hours=2)}, "pickup_before"),
            ({"deliver_before": fixed(minutes=-10)}, "deliver_before"),
            ({"pickup_before": fixed(minutes=-10)}, "pickup_before"),
        ],
    )
    def test_a_bad_window_is_a_422_naming_the_field_and_stores_nothing(
        self, client: TestClient, db: Session, world: World, fields: dict[str, Any], named: str
    ) -> None:
        before = db.scalar(select(func.count()).select_from(Order))
        response = create(client, world.h_store, **fields)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert names_field(response, named), response.json()
        assert db.scalar(select(func.count()).select_from(Order)) == before

    def test_all_four_ends_with_an_offset_come_back_as_the_same_instants(
        self, client: TestClient, world: World
    ) -> None:
        local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Jerusalem")).replace(microsecond=0)
        ends = {
            "pickup_after": local + timedelta(minutes=10),
            "pickup_before": local + timedelta(hours=1),
            "deliver_after": local + timedelta(minutes=30),
            "deliver_before": local + timedelta(hours=2),
        }
        response = create(client, world.h_store, **{k: v.isoformat() for k, v in ends.items()})
        assert response.status_code == 201, response.text
        body = response.json()
        for name, value in ends.items():
            assert datetime.fromisoformat(body[name]) == value
        assert body["late"] is False
        assert body["delivered_late"] is False

    def test_a_start_in_the_past_and_an_end_a_few_seconds_ago_are_accepted(
        self, client: TestClient, world: World
    ) -> None:
        # A start in the past means "from now on"; an end seconds ago is a clock difference.
        response = create(
            client, world.h_store, pickup_after=at(hours=-1), deliver_before=at(seconds=-20)
        )
        assert response.status_code == 201, response.text

    def test_empty_strings_mean_no_window(self, client: TestClient, world: World) -> None:
        response = create(client, world.h_store, **dict.fromkeys(WINDOW, ""))
        assert response.status_code == 201, response.text
        assert all(response.json()[name] is None for name in WINDOW)


class TestPatchValidation:
    def _order(self, client: TestClient, world: World) -> dict[str, Any]:
        response = create(
            client,
            world.h_store,
            pickup_after=at(hours=1),
            pickup_before=at(hours=2),
            deliver_before=at(hours=4),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def test_a_new_deadline_before_the_stored_pickup_window_is_a_422(
        self, client: TestClient, world: World
    ) -> None:
        order = self._order(client, world)
        response = client.patch(
            f"/v1/orders/{order['id']}",
            json={"deliver_before": at(hours=1.5)},
            headers=world.h_store,
        )
        assert response.status_code == 422, response.text
        assert "deliver_before" in response.json()["detail"]
        assert names_field(response, "pickup_before")
        again = client.get(f"/v1/orders/{order['id']}", headers=world.h_store).json()
        assert again["deliver_before"] == order["deliver_before"]
        assert again["version"] == order["version"]

    def test_a_deadline_moved_into_the_past_is_a_422(
        self, client: TestClient, world: World
    ) -> None:
        order = self._order(client, world)
        response = client.patch(
            f"/v1/orders/{order['id']}",
            json={"pickup_after": "", "pickup_before": "", "deliver_before": at(hours=-1)},
            headers=world.h_store,
        )
        assert response.status_code == 422, response.text
        assert names_field(response, "deliver_before")

    @pytest.mark.parametrize("empty", ["", None])
    def test_empty_or_null_clears_an_end(
        self, client: TestClient, world: World, empty: str | None
    ) -> None:
        order = self._order(client, world)
        response = client.patch(
            f"/v1/orders/{order['id']}", json={"pickup_before": empty}, headers=world.h_store
        )
        assert response.status_code == 200, response.text
        assert response.json()["pickup_before"] is None
        assert response.json()["pickup_after"] == order["pickup_after"]

    def test_the_web_admin_echoing_a_late_order_back_changes_nothing(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = self._order(client, world)
        set_windows(
            db,
            order["id"],
            pickup_after=None,
            pickup_before=None,
            deliver_before=utcnow() - timedelta(hours=1),
        )
        read = client.get(f"/v1/orders/{order['id']}", headers=world.h_admin).json()
        assert read["late"] is True
        response = client.patch(f"/v1/orders/{order['id']}", json=read, headers=world.h_admin)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == read["version"]

    def test_an_edit_records_the_previous_window_in_its_event(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = self._order(client, world)
        new_deadline = at(hours=5)
        response = client.patch(
            f"/v1/orders/{order['id']}",
            json={"deliver_before": new_deadline},
            headers=world.h_store,
        )
        assert response.status_code == 200, response.text
        event = db.scalars(
            select(OrderEvent).where(
                OrderEvent.order_id == order["id"], OrderEvent.type == EventType.UPDATED
            )
        ).one()
        assert event.data is not None
        assert event.data["changed"] == ["deliver_before"]
        previous = datetime.fromisoformat(event.data["previous"]["deliver_before"])
        assert previous == datetime.fromisoformat(order["deliver_before"])


class TestLateEverywhere:
    def test_an_open_order_past_its_deadline_is_late_in_every_read_model(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        created = create(client, world.h_store, deliver_before=at(hours=1))
        assert created.status_code == 201, created.text
        order_id = created.json()["id"]
        on_time = client.get(f"/v1/orders/{order_id}", headers=world.h_store).json()
        assert on_time["late"] is False
        set_windows(db, order_id, deliver_before=utcnow() - timedelta(minutes=5))

        one = client.get(f"/v1/orders/{order_id}", headers=world.h_store).json()
        page = client.get("/v1/orders", params={"limit": 10}, headers=world.h_store).json()
        complete = client.get("/v1/orders", headers=world.h_store).json()
        feed = client.get("/v1/events", params={"after": 0}, headers=world.h_store).json()
        events = db.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id)).all()
        sse_bodies = detailed_messages(db, events=list(events))
        rows = csv_rows(client, world.h_store)

        assert one["late"] is True
        assert one["delivered_late"] is False
        assert [o["late"] for o in page if o["id"] == order_id] == [True]
        assert [o["late"] for o in complete if o["id"] == order_id] == [True]
        feed_orders = [m["order"] for m in feed["events"] if m["order_id"] == order_id]
        assert feed_orders
        assert all(o["late"] is True for o in feed_orders)
        assert sse_bodies
        assert all(m["order"]["late"] is True for m in sse_bodies)
        (row,) = [r for r in rows if r["id"] == str(order_id)]
        assert row["late"] == "true"
        assert row["delivered_late"] == "false"
        assert datetime.fromisoformat(row["deliver_before"]) == datetime.fromisoformat(
            one["deliver_before"]
        )
        assert {"pickup_after", "pickup_before", "deliver_after"} <= set(row)

    def test_a_final_order_is_not_late_and_a_late_delivery_says_so(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        deadline = utcnow() - timedelta(minutes=30)
        canceled = make_order(db, store=world.store, status="canceled")
        delivered = make_order(db, store=world.store, status="delivered", courier=world.courier)
        set_windows(db, canceled.id, deliver_before=deadline)
        db.execute(
            update(Order)
            .where(Order.id == delivered.id)
            .values(deliver_before=deadline, delivered_at=deadline + timedelta(minutes=12))
        )
        db.commit()
        reads = {
            o["id"]: o
            for o in client.get("/v1/orders", params={"limit": 50}, headers=world.h_admin).json()
        }
        assert reads[canceled.id]["late"] is False
        assert reads[canceled.id]["delivered_late"] is False
        assert reads[delivered.id]["late"] is False
        assert reads[delivered.id]["delivered_late"] is True

    def test_the_delivered_event_records_the_breach(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = create(client, world.h_store, pickup_before=at(hours=1), deliver_before=at(hours=2))
        order_id = order.json()["id"]
        assert client.post(f"/v1/orders/{order_id}/claim", headers=world.h_courier).is_success
        set_windows(
            db,
            order_id,
            pickup_before=utcnow() - timedelta(minutes=20),
            deliver_before=utcnow() - timedelta(minutes=10),
        )
        for status in ("picked_up", "delivered"):
            response = client.post(
                f"/v1/orders/{order_id}/status", json={"status": status}, headers=world.h_courier
            )
            assert response.status_code == 200, response.text
        assert response.json()["delivered_late"] is True
        timeline = client.get(f"/v1/orders/{order_id}/events", headers=world.h_store).json()
        picked, delivered = timeline[-2:]
        assert picked["data"]["pickup_late"] is True
        assert picked["data"]["minutes_late"] >= 20
        assert delivered["data"]["late"] is True
        assert delivered["data"]["minutes_late"] >= 10
        feed = client.get("/v1/events", params={"after": 0}, headers=world.h_store).json()
        last = feed["events"][-1]
        assert last["late"] is True


class TestDueFilterAndSort:
    def _orders(self, db: Session, world: World) -> dict[str, int]:
        base = utcnow() + timedelta(hours=1)
        ids = {}
        for name, offset in (("c", 3), ("a", 1), ("none1", None), ("b", 2), ("a2", 1)):
            order = make_order(db, store=world.store)
            due = base + timedelta(hours=offset) if offset is not None else None
            set_windows(db, order.id, deliver_before=due)
            ids[name] = order.id
        ids["none2"] = make_order(db, store=world.store).id
        return ids

    def test_sort_due_pages_by_deadline_then_id_with_the_undated_last(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        ids = self._orders(db, world)
        expected = [ids["a"], ids["a2"], ids["b"], ids["c"], ids["none1"], ids["none2"]]
        seen: list[int] = []
        params: dict[str, Any] = {"sort": "due", "limit": 2}
        for _ in range(10):
            response = client.get("/v1/orders", params=params, headers=world.h_store)
            assert response.status_code == 200, response.text
            seen += [o["id"] for o in response.json()]
            cursor = response.headers.get("X-Next-Cursor")
            if cursor is None:
                break
            assert 'rel="next"' in response.headers["Link"]
            assert "+" not in cursor  # safe to paste into a query string as it is
            params = {**params, "cursor": cursor}
        assert seen == expected
        complete = client.get("/v1/orders", params={"sort": "due"}, headers=world.h_store)
        assert [o["id"] for o in complete.json()] == expected

    def test_orders_added_while_paging_by_due_appear_once_or_not_at_all(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        ids = self._orders(db, world)
        first = client.get("/v1/orders", params={"sort": "due", "limit": 2}, headers=world.h_store)
        assert [o["id"] for o in first.json()] == [ids["a"], ids["a2"]]
        earlier, later = make_order(db, store=world.store), make_order(db, store=world.store)
        set_windows(db, earlier.id, deliver_before=utcnow() + timedelta(minutes=5))
        set_windows(db, later.id, deliver_before=utcnow() + timedelta(hours=10))
        rest: list[int] = []
        params: dict[str, Any] = {
            "sort": "due",
            "limit": 2,
            "cursor": first.headers["X-Next-Cursor"],
        }
        while True:
            response = client.get("/v1/orders", params=params, headers=world.h_store)
            rest += [o["id"] for o in response.json()]
            if "X-Next-Cursor" not in response.headers:
                break
            params["cursor"] = response.headers["X-Next-Cursor"]
        # Behind the cursor already: not shown; ahead of it: shown once, in its place.
        assert rest == [ids["b"], ids["c"], later.id, ids["none1"], ids["none2"]]

    def test_due_before_keeps_deadlines_at_or_before_it(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        ids = self._orders(db, world)
        b_due = db.get(Order, ids["b"])
        assert b_due is not None
        assert b_due.deliver_before is not None
        response = client.get(
            "/v1/orders",
            params={"due_before": b_due.deliver_before.isoformat(), "sort": "due"},
            headers=world.h_store,
        )
        assert response.status_code == 200, response.text
        assert [o["id"] for o in response.json()] == [ids["a"], ids["a2"], ids["b"]]

    @pytest.mark.parametrize(
        "params",
        [
            {"sort": "due", "cursor": "12"},
            {"cursor": "due~~5"},
            {"sort": "due", "cursor": "due~not-a-time~5"},
            {"sort": "soon"},
            {"due_before": "next week"},
        ],
    )
    def test_a_cursor_of_the_other_sort_or_a_bad_value_is_a_422(
        self, client: TestClient, world: World, params: dict[str, str]
    ) -> None:
        response = client.get("/v1/orders", params=params, headers=world.h_store)
        assert response.status_code == 422, response.text

    def test_openapi_shows_due_before_and_sort(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        names = {p["name"] for p in spec["paths"]["/v1/orders"]["get"]["parameters"]}
        assert {"due_before", "sort"} <= names
        read = spec["components"]["schemas"]["OrderRead"]["properties"]
        assert {"late", "delivered_late", *WINDOW} <= set(read)
