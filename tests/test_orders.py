"""Orders: create, read, list with filters and pages, PATCH, delete, CSV, the dispatch board."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, Settings
from app.db.models import Order, OrderEvent, OrderStatus, StoreStatus
from tests.builders import make_order, make_user
from tests.orders_helpers import ORDER_BODY, World


def create(client: TestClient, headers: dict[str, str], **overrides: object) -> dict[str, object]:
    response = client.post("/v1/orders", json={**ORDER_BODY, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


class TestCreate:
    def test_store_user_creates_with_defaults_and_price(
        self, client: TestClient, world: World
    ) -> None:
        order = create(client, world.h_store, boxes_count=9, unknown_key="ignored")
        assert order["store_id"] == world.store.id
        assert order["store_name"] == world.store.name
        assert order["status"] == "new"
        assert order["pickup_address"] == world.store.pickup_address
        assert order["delivery_address"] == "Dizengoff 100, 3, 12"
        assert (order["boxes_multiplier"], order["price_total"]) == (2, 70)
        assert order["version"] == 1
        assert order["courier_id"] is None

    @pytest.mark.parametrize(
        ("boxes", "multiplier", "price"),
        [(1, 1, 35), (8, 1, 35), (16, 2, 70), (17, 3, 105), (200, 3, 105)],
    )
    def test_price_tiers(
        self, client: TestClient, world: World, boxes: int, multiplier: int, price: int
    ) -> None:
        order = create(client, world.h_store, boxes_count=boxes)
        assert (order["boxes_multiplier"], order["price_total"]) == (multiplier, price)

    def test_create_records_an_event(self, client: TestClient, world: World) -> None:
        order = create(client, world.h_store)
        events = client.get(f"/v1/orders/{order['id']}/events", headers=world.h_store).json()
        assert [e["type"] for e in events] == ["order.created"]
        assert events[0]["actor_id"] == world.store_user.id
        assert events[0]["actor_role"] == "store"
        assert events[0]["to_status"] == "new"

    @pytest.mark.parametrize("boxes", [0, 201, -1])
    def test_boxes_out_of_range_is_422_and_creates_nothing(
        self, client: TestClient, db: Session, world: World, boxes: int
    ) -> None:
        response = client.post(
            "/v1/orders", json={**ORDER_BODY, "boxes_count": boxes}, headers=world.h_store
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert db.query(Order).count() == 0

    def test_missing_required_fields_is_422(self, client: TestClient, world: World) -> None:
        response = client.post(
            "/v1/orders", json={"recipient_first_name": "A"}, headers=world.h_store
        )
        assert response.status_code == 422
        missing = {tuple(e["loc"]) for e in response.json()["errors"]}
        assert ("body", "street") in missing

    def test_admin_must_name_the_store(self, client: TestClient, world: World) -> None:
        assert client.post("/v1/orders", json=ORDER_BODY, headers=world.h_admin).status_code == 422
        order = create(client, world.h_admin, store_id=world.other_store.id)
        assert order["store_id"] == world.other_store.id

    def test_store_user_cannot_create_for_another_store(
        self, client: TestClient, world: World
    ) -> None:
        response = client.post(
            "/v1/orders",
            json={**ORDER_BODY, "store_id": world.other_store.id},
            headers=world.h_store,
        )
        assert response.status_code == 404

    def test_inactive_store_cannot_create(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        world.store.status = StoreStatus.SUSPENDED
        db.commit()
        response = client.post(
            "/v1/orders", json={**ORDER_BODY, "store_id": world.store.id}, headers=world.h_admin
        )
        assert response.status_code == 403
        assert response.json()["code"] == "store_inactive"

    def test_courier_cannot_create(self, client: TestClient, world: World) -> None:
        assert (
            client.post("/v1/orders", json=ORDER_BODY, headers=world.h_courier).status_code == 403
        )


class TestListAndFilters:
    def test_scopes(self, client: TestClient, db: Session, world: World) -> None:
        mine = make_order(db, store=world.store)
        theirs = make_order(db, store=world.other_store)
        held = make_order(db, store=world.other_store, status="accepted", courier=world.courier)
        held_by_other = make_order(
            db, store=world.store, status="accepted", courier=world.other_courier
        )

        def ids(headers: dict[str, str]) -> set[int]:
            return {o["id"] for o in client.get("/v1/orders", headers=headers).json()}

        assert ids(world.h_admin) == {mine.id, theirs.id, held.id, held_by_other.id}
        assert ids(world.h_store) == {mine.id, held_by_other.id}
        assert ids(world.h_courier) == {mine.id, theirs.id, held.id}  # pool + own

    def test_assign_mode_hides_the_pool_from_couriers(
        self,
        client: TestClient,
        db: Session,
        world: World,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.ASSIGN)
        make_order(db, store=world.store)
        assigned = make_order(db, store=world.store, status="assigned", courier=world.courier)
        assert [o["id"] for o in client.get("/v1/orders", headers=world.h_courier).json()] == [
            assigned.id
        ]

    def test_status_filter_repeatable_or_comma_list(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        new = make_order(db, store=world.store)
        accepted = make_order(db, store=world.store, status="accepted", courier=world.courier)
        make_order(db, store=world.store, status="delivered", courier=world.courier)
        for query in ("status=new,accepted", "status=new&status=accepted"):
            got = {o["id"] for o in client.get(f"/v1/orders?{query}", headers=world.h_admin).json()}
            assert got == {new.id, accepted.id}, query
        bad = client.get("/v1/orders?status=lost", headers=world.h_admin)
        assert bad.status_code == 422

    def test_store_and_courier_filters_with_aliases(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        a = make_order(db, store=world.store, status="accepted", courier=world.courier)
        b = make_order(db, store=world.other_store)
        assert [
            o["id"]
            for o in client.get(
                f"/v1/orders?store={world.other_store.id}", headers=world.h_admin
            ).json()
        ] == [b.id]
        assert [
            o["id"]
            for o in client.get(
                f"/v1/orders?store_id={world.other_store.id}", headers=world.h_admin
            ).json()
        ] == [b.id]
        assert [
            o["id"]
            for o in client.get(
                f"/v1/orders?courier={world.courier.id}", headers=world.h_admin
            ).json()
        ] == [a.id]
        assert [
            o["id"]
            for o in client.get(
                f"/v1/orders?courier_id={world.courier.id}", headers=world.h_admin
            ).json()
        ] == [a.id]

    def test_date_range_with_inclusive_to_day(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        orders = [make_order(db, store=world.store) for _ in range(3)]
        days = [
            datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
            datetime(2026, 3, 2, 12, tzinfo=UTC),
            datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC),
        ]
        for order, day in zip(orders, days, strict=True):
            db.execute(update(Order).where(Order.id == order.id).values(created_at=day))
        db.commit()

        def ids(query: str) -> list[int]:
            response = client.get(f"/v1/orders?{query}", headers=world.h_admin)
            assert response.status_code == 200, response.text
            return sorted(o["id"] for o in response.json())

        assert ids("from=2026-03-02&to=2026-03-02") == [orders[1].id]
        assert ids("from=2026-03-01&to=2026-03-02") == [orders[0].id, orders[1].id]
        assert ids("from=2026-03-02T00:00:00Z") == [orders[1].id, orders[2].id]
        assert ids("to=2026-03-01") == [orders[0].id]
        assert client.get("/v1/orders?from=yesterday", headers=world.h_admin).status_code == 422

    def test_q_matches_names_and_phone_digits(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = create(
            client,
            world.h_store,
            recipient_first_name="Shlomit",
            recipient_last_name="Ben-Ari",
            phone="052-987-6543",
        )
        create(client, world.h_store)
        for q in ("shlomit", "BEN-ARI", "shlomit ben", "9876543", "052-987"):
            got = [
                o["id"]
                for o in client.get("/v1/orders", params={"q": q}, headers=world.h_store).json()
            ]
            assert got == [order["id"]], q

    def test_q_treats_wildcards_literally(self, client: TestClient, world: World) -> None:
        create(client, world.h_store)
        assert client.get("/v1/orders", params={"q": "%"}, headers=world.h_store).json() == []

    def test_pagination_returns_every_order_once_while_orders_are_inserted(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        existing = {make_order(db, store=world.store).id for _ in range(7)}
        seen: list[int] = []
        url = "/v1/orders?limit=3"
        pages = 0
        while url:
            response = client.get(url, headers=world.h_store)
            seen += [o["id"] for o in response.json()]
            make_order(db, store=world.store)  # a new order arrives between pages
            pages += 1
            link = response.headers.get("link")
            if link:
                assert response.headers["x-next-cursor"] in link
                url = link.split(";")[0].strip("<>")
            else:
                url = ""
        assert pages == 3
        assert sorted(seen) == sorted(existing)
        assert len(seen) == len(set(seen))

    def test_limit_bounds(self, client: TestClient, world: World) -> None:
        assert client.get("/v1/orders?limit=0", headers=world.h_admin).status_code == 422
        assert client.get("/v1/orders?limit=501", headers=world.h_admin).status_code == 422

    def test_list_requires_auth(self, client: TestClient) -> None:
        assert client.get("/v1/orders").status_code == 401


class TestPatch:
    def test_whole_object_read_from_get_can_be_sent_back(
        self, client: TestClient, world: World
    ) -> None:
        order = create(client, world.h_store)
        order["notes"] = "Ring twice"
        order["boxes_count"] = 10
        order["status"] = "delivered"  # read-only: ignored
        order["price_total"] = 1
        response = client.patch(f"/v1/orders/{order['id']}", json=order, headers=world.h_store)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["notes"] == "Ring twice"
        assert body["status"] == "new"
        assert (body["boxes_multiplier"], body["price_total"]) == (2, 70)
        assert body["version"] == 2
        events = client.get(f"/v1/orders/{order['id']}/events", headers=world.h_store).json()
        assert events[-1]["type"] == "order.updated"
        assert set(events[-1]["data"]["changed"]) == {
            "notes",
            "boxes_count",
            "boxes_multiplier",
            "price_total",
        }

    def test_stale_version_is_409(self, client: TestClient, world: World) -> None:
        order = create(client, world.h_store)
        client.patch(
            f"/v1/orders/{order['id']}",
            json={"notes": "first", "version": 1},
            headers=world.h_store,
        )
        stale = client.patch(
            f"/v1/orders/{order['id']}",
            json={"notes": "second", "version": 1},
            headers=world.h_store,
        )
        assert stale.status_code == 409
        assert stale.json()["code"] == "version_conflict"
        assert (
            client.get(f"/v1/orders/{order['id']}", headers=world.h_store).json()["notes"]
            == "first"
        )

    def test_status_in_body_changes_nothing(self, client: TestClient, world: World) -> None:
        order = create(client, world.h_store)
        response = client.patch(
            f"/v1/orders/{order['id']}", json={"status": "canceled"}, headers=world.h_store
        )
        assert response.status_code == 200
        assert response.json()["status"] == "new"
        assert response.json()["version"] == 1

    def test_store_edits_only_while_new_admin_until_final(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = make_order(db, store=world.store, status="accepted", courier=world.courier)
        assert (
            client.patch(
                f"/v1/orders/{order.id}", json={"notes": "x"}, headers=world.h_store
            ).status_code
            == 409
        )
        assert (
            client.patch(
                f"/v1/orders/{order.id}", json={"notes": "x"}, headers=world.h_admin
            ).status_code
            == 200
        )
        done = make_order(db, store=world.store, status="delivered", courier=world.courier)
        response = client.patch(f"/v1/orders/{done.id}", json={"notes": "x"}, headers=world.h_admin)
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"

    def test_growing_boxes_past_the_couriers_capacity_is_409(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = make_order(
            db, store=world.store, status="accepted", courier=world.courier, boxes_count=6
        )
        response = client.patch(
            f"/v1/orders/{order.id}", json={"boxes_count": 9}, headers=world.h_admin
        )
        assert response.status_code == 409
        assert response.json()["code"] == "capacity_exceeded"

    def test_invalid_value_is_422_and_changes_nothing(
        self, client: TestClient, world: World
    ) -> None:
        order = create(client, world.h_store)
        response = client.patch(
            f"/v1/orders/{order['id']}",
            json={"boxes_count": 0, "notes": "x"},
            headers=world.h_store,
        )
        assert response.status_code == 422
        assert (
            client.get(f"/v1/orders/{order['id']}", headers=world.h_store).json()["notes"] is None
        )


class TestDelete:
    def test_admin_soft_deletes(self, client: TestClient, db: Session, world: World) -> None:
        order = make_order(db, store=world.store)
        response = client.delete(f"/v1/orders/{order.id}", headers=world.h_admin)
        assert response.json() == {"id": order.id, "deleted": True}
        assert client.get(f"/v1/orders/{order.id}", headers=world.h_admin).status_code == 404
        db.expire_all()
        assert db.get(Order, order.id).deleted_at is not None  # type: ignore[union-attr]
        assert db.query(OrderEvent).filter_by(order_id=order.id, type="order.deleted").count() == 1

    def test_store_cannot_delete(self, client: TestClient, db: Session, world: World) -> None:
        order = make_order(db, store=world.store)
        assert client.delete(f"/v1/orders/{order.id}", headers=world.h_store).status_code == 403


class TestExport:
    def test_csv_has_bom_header_and_one_line_per_order_in_scope(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        create(client, world.h_store, recipient_first_name="יוסי", recipient_last_name="כהן")
        create(client, world.h_store)
        make_order(db, store=world.other_store)
        response = client.get("/v1/orders/export.csv", headers=world.h_store)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        raw = response.content
        assert raw.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0][:4] == ["id", "created_at", "store_name", "status"]
        assert len(rows) == 3
        assert any("יוסי" in row for row in rows[1:])

    def test_csv_neutralises_formulas(self, client: TestClient, world: World) -> None:
        create(client, world.h_store, notes='=HYPERLINK("http://x")')
        text = client.get("/v1/orders/export.csv", headers=world.h_store).content.decode(
            "utf-8-sig"
        )
        assert "'=HYPERLINK" in text

    def test_courier_cannot_export(self, client: TestClient, world: World) -> None:
        assert client.get("/v1/orders/export.csv", headers=world.h_courier).status_code == 403


class TestDispatchBoard:
    def test_couriers_with_load_most_available_first(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        make_order(db, store=world.store, status="accepted", courier=world.courier, boxes_count=5)
        make_order(db, store=world.store, status="assigned", courier=world.courier, boxes_count=2)
        full = make_user(db, capacity_boxes=4)
        make_order(db, store=world.store, status="picked_up", courier=full, boxes_count=4)
        board = client.get("/v1/couriers", headers=world.h_admin).json()
        by_id = {c["id"]: c for c in board}
        assert by_id[world.courier.id]["load_boxes"] == 5
        assert by_id[world.courier.id]["available_boxes"] == 3
        assert by_id[world.courier.id]["active_orders"] == 2
        assert board[0]["id"] == world.other_courier.id
        available = [
            c["id"]
            for c in client.get("/v1/couriers?available_only=true", headers=world.h_admin).json()
        ]
        assert full.id not in available

    def test_board_is_admin_only(self, client: TestClient, world: World) -> None:
        assert client.get("/v1/couriers", headers=world.h_store).status_code == 403
        assert client.get("/v1/couriers", headers=world.h_courier).status_code == 403
        assert client.get("/v1/couriers").status_code == 401


def test_timestamps_are_iso_with_offset(client: TestClient, world: World) -> None:
    order = create(client, world.h_store)
    created = datetime.fromisoformat(str(order["created_at"]))
    assert created.tzinfo is not None
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)
    assert order["status"] == OrderStatus.NEW
