"""After a failure: redeliver and return; courier duty; the release of stale accepted orders."""

import csv as stdlib_csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, Settings
from app.db.base import utcnow
from app.db.models import Device, Order, OrderEvent, PushJob, User
from app.services.maintenance import release_stale_claims
from app.services.order_lifecycle import release_stale_orders
from app.services.visibility import audience
from tests.builders import auth_headers, make_order, make_user
from tests.orders_helpers import World


def failed_order(client: TestClient, db: Session, world: World) -> Order:
    """An order that really failed: claimed, picked up and failed by the world's courier."""
    order = make_order(db, store=world.store)
    assert client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier).status_code == 200
    client.post(
        f"/v1/orders/{order.id}/status", json={"status": "picked_up"}, headers=world.h_courier
    )
    failed = client.post(
        f"/v1/orders/{order.id}/status",
        json={"status": "failed", "reason_code": "recipient_absent", "note": "Rang twice"},
        headers=world.h_courier,
    )
    assert failed.status_code == 200, failed.text
    return order


def off_duty(db: Session, user: User) -> None:
    user.on_duty = False
    db.commit()


def device(db: Session, user: User) -> Device:
    found = Device(user_id=user.id, token=f"{user.id:08x}e" * 4)
    db.add(found)
    db.commit()
    return found


# --- redeliver ---------------------------------------------------------------------------------


class TestRedeliver:
    def test_back_to_the_pool_clears_the_failure_and_the_event_keeps_it(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        response = client.post(f"/v1/orders/{order.id}/redeliver", headers=world.h_store)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["courier_id"]) == ("new", None)
        for field in ("failure_reason", "failure_reason_code", "failed_at", "recipient_name"):
            assert body[field] is None, field
        assert body["picked_up_at"] is None
        assert body["accepted_at"] is None
        events = client.get(f"/v1/orders/{order.id}/events", headers=world.h_admin).json()
        last = events[-1]
        assert (last["type"], last["from_status"], last["to_status"]) == (
            "order.redelivered",
            "failed",
            "new",
        )
        assert last["actor_role"] == "store"
        assert last["data"]["failure"]["failure_reason_code"] == "recipient_absent"
        assert last["data"]["failure"]["failed_at"]
        # A fresh attempt: the pool sees it, and a courier can claim it again.
        again = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_other_courier)
        assert again.status_code == 200, again.text

    def test_to_a_courier_assigns_it_and_pushes_to_that_courier(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        target = device(db, world.other_courier)
        response = client.post(
            f"/v1/orders/{order.id}/redeliver",
            json={"courier_id": world.other_courier.id},
            headers=world.h_admin,
        )
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["courier_id"]) == (
            "assigned",
            world.other_courier.id,
        )
        event_id = db.scalar(
            select(OrderEvent.id).where(
                OrderEvent.order_id == order.id, OrderEvent.type == "order.redelivered"
            )
        )
        pushed = db.scalars(select(PushJob).where(PushJob.event_id == event_id)).all()
        assert target.id in {job.device_id for job in pushed}
        assert {job.payload["type"] for job in pushed} == {"order.redelivered"}

    def test_a_keyed_retry_replays_the_answer_with_one_event(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        headers = {**world.h_admin, "Idempotency-Key": "redeliver-1"}
        first = client.post(f"/v1/orders/{order.id}/redeliver", json={}, headers=headers)
        again = client.post(f"/v1/orders/{order.id}/redeliver", json={}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
        count = db.scalars(
            select(OrderEvent).where(
                OrderEvent.order_id == order.id, OrderEvent.type == "order.redelivered"
            )
        ).all()
        assert len(count) == 1
        # Without the key, a second redelivery of what is now a `new` order is refused.
        unkeyed = client.post(f"/v1/orders/{order.id}/redeliver", headers=world.h_admin)
        assert unkeyed.status_code == 409

    def test_to_an_off_duty_courier_is_409_and_changes_nothing(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        off_duty(db, world.other_courier)
        response = client.post(
            f"/v1/orders/{order.id}/redeliver",
            json={"courier_id": world.other_courier.id},
            headers=world.h_admin,
        )
        assert response.status_code == 409
        assert response.json()["code"] == "courier_off_duty"
        after = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
        assert (after["status"], after["failure_reason_code"]) == ("failed", "recipient_absent")

    def test_to_a_courier_without_room_is_409_capacity_exceeded(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        make_order(
            db, store=world.store, status="picked_up", courier=world.other_courier, boxes_count=8
        )
        response = client.post(
            f"/v1/orders/{order.id}/redeliver",
            json={"courier_id": world.other_courier.id},
            headers=world.h_admin,
        )
        assert response.status_code == 409
        assert response.json()["code"] == "capacity_exceeded"

    def test_to_a_non_courier_is_422_naming_courier_id(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        for courier_id in (world.store_user.id, 999_999, "x"):
            response = client.post(
                f"/v1/orders/{order.id}/redeliver",
                json={"courier_id": courier_id},
                headers=world.h_admin,
            )
            assert response.status_code == 422
            assert "courier_id" in response.text

    def test_another_stores_order_is_404(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        for path in ("redeliver", "return"):
            response = client.post(f"/v1/orders/{order.id}/{path}", headers=world.h_other_store)
            assert response.status_code == 404
            assert "Levi" not in response.text
        assert client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()["status"] == (
            "failed"
        )


# --- return ------------------------------------------------------------------------------------


class TestReturn:
    def test_stamps_returned_at_keeps_failed_and_cannot_repeat_or_be_redelivered(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        response = client.post(f"/v1/orders/{order.id}/return", headers=world.h_store)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "failed"
        assert body["returned_at"]
        assert body["failure_reason_code"] == "recipient_absent"
        events = client.get(f"/v1/orders/{order.id}/events", headers=world.h_store).json()
        assert (events[-1]["type"], events[-1]["from_status"], events[-1]["to_status"]) == (
            "order.returned",
            "failed",
            "failed",
        )
        twice = client.post(f"/v1/orders/{order.id}/return", headers=world.h_admin)
        assert twice.status_code == 409
        assert twice.json()["code"] == "invalid_transition"
        redeliver = client.post(f"/v1/orders/{order.id}/redeliver", headers=world.h_admin)
        assert redeliver.status_code == 409
        assert redeliver.json()["code"] == "invalid_transition"
        after = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
        assert after["returned_at"] == body["returned_at"]
        assert after["version"] == body["version"]

    def test_returned_at_is_in_the_list_and_the_csv(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = failed_order(client, db, world)
        client.post(f"/v1/orders/{order.id}/return", headers=world.h_store)
        listed = client.get("/v1/orders", headers=world.h_store).json()
        assert [o["returned_at"] is not None for o in listed if o["id"] == order.id] == [True]
        csv = client.get("/v1/orders/export.csv", headers=world.h_admin)
        assert csv.status_code == 200
        rows = stdlib_csv.DictReader(io.StringIO(csv.text.lstrip("\ufeff")))
        (row,) = [r for r in rows if r["id"] == str(order.id)]
        assert row["returned_at"]


# --- duty --------------------------------------------------------------------------------------


class TestDuty:
    def test_courier_goes_off_and_on_duty_and_is_told_of_held_orders(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        make_order(db, store=world.store, status="accepted", courier=world.courier)
        off = client.post("/v1/couriers/me/duty", json={"on_duty": False}, headers=world.h_courier)
        assert off.status_code == 200, off.text
        assert off.json()["on_duty"] is False
        assert off.json()["active_orders"] == 1
        assert "1 active order" in off.json()["message"]
        db.refresh(world.courier)
        assert world.courier.on_duty is False
        board = client.get("/v1/couriers", headers=world.h_admin).json()
        assert [c["on_duty"] for c in board if c["id"] == world.courier.id] == [False]
        available = client.get("/v1/couriers?available_only=true", headers=world.h_admin).json()
        assert world.courier.id not in [c["id"] for c in available]
        on = client.post("/v1/couriers/me/duty", json={"on_duty": True}, headers=world.h_courier)
        assert (on.json()["on_duty"], on.json()["active_orders"]) == (True, 1)

    def test_duty_changes_are_logged_with_who_changed_them(
        self, client: TestClient, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level("INFO", logger="zariz.couriers"):
            client.post("/v1/couriers/me/duty", json={"on_duty": False}, headers=world.h_courier)
            client.post(
                f"/v1/admin/couriers/{world.courier.id}/duty",
                json={"on_duty": True},
                headers=world.h_admin,
            )
        changes = [r for r in caplog.records if r.getMessage() == "courier duty changed"]
        assert [(r.courier_id, r.on_duty, r.changed_by) for r in changes] == [  # type: ignore[attr-defined]
            (world.courier.id, False, "courier"),
            (world.courier.id, True, "admin"),
        ]

    def test_duty_is_for_couriers_and_takes_a_boolean(
        self, client: TestClient, world: World
    ) -> None:
        for headers in (world.h_store, world.h_admin):
            response = client.post("/v1/couriers/me/duty", json={"on_duty": False}, headers=headers)
            assert response.status_code == 403
        for body in ({}, {"on_duty": "no"}, {"on_duty": None}):
            response = client.post("/v1/couriers/me/duty", json=body, headers=world.h_courier)
            assert response.status_code == 422, body
            assert "on_duty" in response.text
        assert client.post("/v1/couriers/me/duty", json={"on_duty": True}).status_code == 401

    def test_off_duty_courier_cannot_claim_or_accept(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        pool = make_order(db, store=world.store)
        assigned = make_order(db, store=world.store, status="assigned", courier=world.courier)
        off_duty(db, world.courier)
        for order in (pool, assigned):
            response = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier)
            assert response.status_code == 409
            assert response.json()["code"] == "courier_off_duty"
        assert client.get(f"/v1/orders/{pool.id}", headers=world.h_admin).json()["status"] == "new"
        # An order already held still moves on: off duty stops new work only.
        held = make_order(db, store=world.store, status="accepted", courier=world.courier)
        pick = client.post(
            f"/v1/orders/{held.id}/status", json={"status": "picked_up"}, headers=world.h_courier
        )
        assert pick.status_code == 200, pick.text

    def test_off_duty_courier_cannot_be_assigned(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = make_order(db, store=world.store)
        off_duty(db, world.other_courier)
        response = client.post(
            f"/v1/orders/{order.id}/assign",
            json={"courier_id": world.other_courier.id},
            headers=world.h_admin,
        )
        assert response.status_code == 409
        assert response.json()["code"] == "courier_off_duty"
        after = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
        assert (after["status"], after["version"]) == ("new", 1)

    def test_pool_pushes_leave_out_off_duty_couriers_but_not_their_own_orders(
        self,
        client: TestClient,
        db: Session,
        world: World,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.OPEN)
        resting = make_user(db)
        off_duty(db, resting)
        created = client.post(
            "/v1/orders",
            json={
                "recipient_first_name": "Noa",
                "recipient_last_name": "Levi",
                "phone": "+972501234567",
                "street": "Dizengoff",
                "building_no": "100",
            },
            headers=world.h_store,
        )
        assert created.status_code == 201
        pool_event = db.scalars(select(OrderEvent).order_by(OrderEvent.id.desc())).first()
        assert pool_event is not None
        assert pool_event.pool_change
        heard = audience(db, pool_event)
        assert world.courier.id in heard
        assert resting.id not in heard
        # The courier's own order: heard whatever the duty.
        mine = make_order(db, store=world.store, status="accepted", courier=resting)
        client.post(f"/v1/orders/{mine.id}/cancel", json={"reason": "x"}, headers=world.h_admin)
        own_event = db.scalars(select(OrderEvent).order_by(OrderEvent.id.desc())).first()
        assert own_event is not None
        assert own_event.order_id == mine.id
        assert resting.id in audience(db, own_event)


# --- auto-release ------------------------------------------------------------------------------


def accepted_minutes_ago(db: Session, world: World, minutes: int) -> Order:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    order.accepted_at = utcnow() - timedelta(minutes=minutes)
    db.commit()
    return order


class TestAutoRelease:
    def test_releases_only_accepted_orders_past_the_limit_as_the_system(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        courier_device = device(db, world.courier)
        stale = accepted_minutes_ago(db, world, 30)
        fresh = accepted_minutes_ago(db, world, 5)
        picked = make_order(db, store=world.store, status="picked_up", courier=world.courier)
        assert release_stale_claims(db, after_minutes=20) == 1
        db.expire_all()
        got = db.get(Order, stale.id)
        assert got is not None
        assert (got.status, got.courier_id, got.accepted_at) == ("new", None, None)
        assert db.get(Order, fresh.id).status == "accepted"  # type: ignore[union-attr]
        assert db.get(Order, picked.id).status == "picked_up"  # type: ignore[union-attr]
        events = client.get(f"/v1/orders/{stale.id}/events", headers=world.h_admin).json()
        assert len(events) == 1
        event = events[0]
        assert (event["type"], event["from_status"], event["to_status"]) == (
            "order.released",
            "accepted",
            "new",
        )
        assert (event["actor_id"], event["actor_role"]) == (None, "system")
        assert event["reason"] == "not_picked_up_in_time"
        # The courier who lost it hears of it.
        jobs = db.scalars(select(PushJob).where(PushJob.device_id == courier_device.id)).all()
        assert [job.payload["type"] for job in jobs] == ["order.released"]
        # Back in the pool: another courier can claim it.
        claim = client.post(f"/v1/orders/{stale.id}/claim", headers=world.h_other_courier)
        assert claim.status_code == 200
        # A second sweep finds nothing more.
        assert release_stale_claims(db, after_minutes=20) == 0

    def test_off_by_default_and_at_zero(self, db: Session, world: World) -> None:
        stale = accepted_minutes_ago(db, world, 600)
        assert Settings().auto_release_after_minutes == 0
        assert release_stale_orders(db, after_minutes=0) == []
        db.expire_all()
        assert db.get(Order, stale.id).status == "accepted"  # type: ignore[union-attr]

    def test_in_assign_mode_the_order_goes_back_to_unassigned(
        self,
        client: TestClient,
        db: Session,
        world: World,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(settings, "dispatch_mode", DispatchMode.ASSIGN)
        stale = accepted_minutes_ago(db, world, 30)
        assert release_stale_orders(db, after_minutes=20) == [stale.id]
        after = client.get(f"/v1/orders/{stale.id}", headers=world.h_admin).json()
        assert (after["status"], after["courier_id"]) == ("new", None)
        # Unassigned: not claimable from a pool couriers cannot see; dispatch assigns it again.
        assert client.post(f"/v1/orders/{stale.id}/claim", headers=world.h_courier).status_code == (
            404
        )
        again = client.post(
            f"/v1/orders/{stale.id}/assign",
            json={"courier_id": world.other_courier.id},
            headers=world.h_admin,
        )
        assert again.status_code == 200

    def test_a_system_event_reaches_the_feed(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        stale = accepted_minutes_ago(db, world, 30)
        release_stale_orders(db, after_minutes=20)
        feed = client.get("/v1/events", headers=world.h_courier)
        assert feed.status_code == 200, feed.text
        released = [e for e in feed.json()["events"] if e["order_id"] == stale.id]
        assert [(e["type"], e["actor_role"]) for e in released] == [("order.released", "system")]


def test_admin_courier_duty_reads(client: TestClient, db: Session, world: World) -> None:
    headers = auth_headers(db, world.admin)
    read = client.get(f"/v1/admin/couriers/{world.courier.id}", headers=headers).json()
    assert read["on_duty"] is True
