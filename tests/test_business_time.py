"""BUSINESS_TIMEZONE day boundaries (a DST day included) and couriers' device times."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import Order, OrderEvent
from app.services.auth import Principal
from app.services.order_stats import day_summary
from tests.builders import make_order
from tests.orders_helpers import ORDER_BODY, World

JERUSALEM = ZoneInfo("Asia/Jerusalem")
# Israel moves to summer time at 02:00 on Friday 2026-03-27: that day has 23 hours.
DST_DAY = date(2026, 3, 27)


@pytest.fixture
def jerusalem(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "business_timezone", "Asia/Jerusalem")


def order_created_at(db: Session, world: World, moment: datetime) -> int:
    order = make_order(db, store=world.store)
    db.execute(update(Order).where(Order.id == order.id).values(created_at=moment))
    db.commit()
    return order.id


def listed(client: TestClient, world: World, **params: str) -> list[int]:
    response = client.get("/v1/orders", params=params, headers=world.h_admin)
    assert response.status_code == 200, response.text
    return sorted(o["id"] for o in response.json())


class TestBusinessDay:
    def test_the_dst_day_has_23_hours_in_jerusalem(self) -> None:
        start = datetime.combine(DST_DAY, time(), JERUSALEM)
        end = datetime.combine(DST_DAY + timedelta(days=1), time(), JERUSALEM)
        assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)

    def test_a_date_filter_is_the_business_day_on_a_dst_change(
        self, client: TestClient, db: Session, world: World, jerusalem: None
    ) -> None:
        utc = UTC
        ids = {
            "before": order_created_at(db, world, datetime(2026, 3, 26, 21, 59, tzinfo=utc)),
            "first": order_created_at(db, world, datetime(2026, 3, 26, 22, 0, tzinfo=utc)),
            "last": order_created_at(db, world, datetime(2026, 3, 27, 20, 59, tzinfo=utc)),
            "after": order_created_at(db, world, datetime(2026, 3, 27, 21, 0, tzinfo=utc)),
        }
        day = DST_DAY.isoformat()
        assert listed(client, world, **{"from": day, "to": day}) == [ids["first"], ids["last"]]
        assert listed(client, world, to="2026-03-26") == [ids["before"]]
        assert listed(client, world, **{"from": "2026-03-28"}) == [ids["after"]]
        # A datetime without an offset is a business-zone wall-clock time too.
        assert listed(client, world, **{"from": "2026-03-27T23:59:00"}) == [
            ids["last"],
            ids["after"],
        ]
        principal = Principal(user=world.admin, session_id=0, family_id=0, store_ids=())
        summary = day_summary(db, principal=principal, day=DST_DAY, zone=JERUSALEM)
        assert summary.created == 2

    def test_in_utc_the_same_date_is_another_set_of_orders(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        first = order_created_at(db, world, datetime(2026, 3, 26, 22, 0, tzinfo=UTC))
        late = order_created_at(db, world, datetime(2026, 3, 27, 21, 0, tzinfo=UTC))
        day = DST_DAY.isoformat()
        assert listed(client, world, **{"from": day, "to": day}) == [late]
        assert first not in listed(client, world, **{"from": day, "to": day})

    def test_csv_times_are_business_local_with_their_offset(
        self, client: TestClient, db: Session, world: World, jerusalem: None
    ) -> None:
        winter = order_created_at(db, world, datetime(2026, 3, 26, 22, 0, tzinfo=UTC))
        summer = order_created_at(db, world, datetime(2026, 3, 27, 20, 59, tzinfo=UTC))
        response = client.get("/v1/orders/export.csv", headers=world.h_admin)
        rows = {
            r["id"]: r for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
        }
        assert rows[str(winter)]["created_at"].startswith("2026-03-27T00:00:00")
        assert rows[str(winter)]["created_at"].endswith("+02:00")
        assert rows[str(summer)]["created_at"].startswith("2026-03-27T23:59:00")
        assert rows[str(summer)]["created_at"].endswith("+03:00")

    def test_due_before_a_date_is_up_to_the_end_of_that_business_day(
        self, client: TestClient, db: Session, world: World, jerusalem: None
    ) -> None:
        inside = make_order(db, store=world.store)
        outside = make_order(db, store=world.store)
        for order, moment in (
            (inside, datetime(2026, 3, 27, 20, 59, tzinfo=UTC)),
            (outside, datetime(2026, 3, 27, 21, 0, tzinfo=UTC)),
        ):
            db.execute(update(Order).where(Order.id == order.id).values(deliver_before=moment))
        db.commit()
        assert listed(client, world, due_before=DST_DAY.isoformat()) == [inside.id]

    def test_an_unknown_business_timezone_refuses_to_start(self) -> None:
        with pytest.raises(ValidationError, match="BUSINESS_TIMEZONE"):
            Settings(business_timezone="Mars/Olympus_Mons")


class TestDeviceTime:
    def _taken(self, client: TestClient, db: Session, world: World, hours_ago: float) -> int:
        """A new order whose events are backdated, as if created before the courier went offline."""
        response = client.post("/v1/orders", json=ORDER_BODY, headers=world.h_store)
        order_id: int = response.json()["id"]
        db.execute(
            update(OrderEvent)
            .where(OrderEvent.order_id == order_id)
            .values(created_at=utcnow() - timedelta(hours=hours_ago))
        )
        db.commit()
        return order_id

    def test_offline_actions_keep_the_device_time_apart_from_the_servers(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order_id = self._taken(client, db, world, hours_ago=3)
        claimed_at = utcnow() - timedelta(hours=2)
        picked_at = claimed_at + timedelta(minutes=10)
        delivered_at = picked_at + timedelta(minutes=20)
        db.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(deliver_before=delivered_at + timedelta(minutes=5))
        )
        db.commit()
        steps = [
            ("claim", {"occurred_at": claimed_at.isoformat()}),
            ("status", {"status": "picked_up", "occurred_at": picked_at.isoformat()}),
            ("status", {"status": "delivered", "occurred_at": delivered_at.isoformat()}),
        ]
        for action, body in steps:
            response = client.post(
                f"/v1/orders/{order_id}/{action}", json=body, headers=world.h_courier
            )
            assert response.status_code == 200, response.text
        order = response.json()
        # Synced after the deadline, delivered before it: not late.
        assert datetime.fromisoformat(order["delivered_at"]) == delivered_at
        assert datetime.fromisoformat(order["accepted_at"]) == claimed_at
        assert order["delivered_late"] is False
        assert order["late"] is False
        timeline = client.get(f"/v1/orders/{order_id}/events", headers=world.h_store).json()
        delivered = timeline[-1]
        assert datetime.fromisoformat(delivered["device_occurred_at"]) == delivered_at
        assert datetime.fromisoformat(delivered["created_at"]) > delivered_at + timedelta(hours=1)
        feed = client.get("/v1/events", params={"after": 0}, headers=world.h_store).json()
        message = feed["events"][-1]
        assert datetime.fromisoformat(message["device_occurred_at"]) == delivered_at
        assert message["occurred_at"] == delivered["created_at"]  # the server's, as before
        rows = list(
            csv.DictReader(
                io.StringIO(
                    client.get("/v1/orders/export.csv", headers=world.h_store).content.decode(
                        "utf-8-sig"
                    )
                )
            )
        )
        (row,) = [r for r in rows if r["id"] == str(order_id)]
        assert datetime.fromisoformat(row["delivered_at"]) == delivered_at

    @pytest.mark.parametrize(
        ("occurred", "why"),
        [
            (timedelta(minutes=10), "future"),  # beyond the 120 s skew
            (-timedelta(hours=25), "hours ago"),  # older than OCCURRED_AT_MAX_AGE_HOURS
            (-timedelta(hours=4), "previous step"),  # before the order was created
        ],
    )
    def test_an_unbelievable_device_time_is_a_422_naming_occurred_at(
        self,
        client: TestClient,
        db: Session,
        world: World,
        occurred: timedelta,
        why: str,
    ) -> None:
        order_id = self._taken(client, db, world, hours_ago=3)
        response = client.post(
            f"/v1/orders/{order_id}/claim",
            json={"occurred_at": (utcnow() + occurred).isoformat()},
            headers=world.h_courier,
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("occurred_at")
        assert why in response.json()["detail"]
        db.expire_all()
        order = db.get(Order, order_id)
        assert order is not None
        assert order.status == "new"
        assert order.courier_id is None

    def test_a_step_dated_before_the_couriers_previous_step_is_a_422(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order_id = self._taken(client, db, world, hours_ago=3)
        claimed_at = utcnow() - timedelta(hours=1)
        claim = client.post(
            f"/v1/orders/{order_id}/claim",
            json={"occurred_at": claimed_at.isoformat()},
            headers=world.h_courier,
        )
        assert claim.status_code == 200, claim.text
        response = client.post(
            f"/v1/orders/{order_id}/status",
            json={
                "status": "picked_up",
                "occurred_at": (claimed_at - timedelta(minutes=1)).isoformat(),
            },
            headers=world.h_courier,
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == "occurred_at is before the order's previous step"

    def test_a_naive_device_time_is_a_422_and_a_decline_takes_one_too(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order_id = self._taken(client, db, world, hours_ago=3)
        naive = client.post(
            f"/v1/orders/{order_id}/claim",
            json={"occurred_at": "2026-12-01T10:00:00"},
            headers=world.h_courier,
        )
        assert naive.status_code == 422
        assert naive.json()["errors"][0]["loc"][-1] == "occurred_at"
        assert client.post(f"/v1/orders/{order_id}/claim", headers=world.h_courier).is_success
        declined_at = utcnow()  # after the claim: not before the previous step
        response = client.post(
            f"/v1/orders/{order_id}/decline",
            json={"occurred_at": declined_at.isoformat()},
            headers=world.h_courier,
        )
        assert response.status_code == 200, response.text
        event = db.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        ).all()[-1]
        assert event.type == "order.declined"
        assert event.occurred_at == declined_at

    def test_a_taken_order_is_a_409_whatever_the_device_time(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order_id = self._taken(client, db, world, hours_ago=3)
        assert client.post(f"/v1/orders/{order_id}/claim", headers=world.h_other_courier).is_success
        response = client.post(
            f"/v1/orders/{order_id}/claim",
            json={"occurred_at": (utcnow() + timedelta(hours=1)).isoformat()},
            headers=world.h_courier,
        )
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "order_already_taken"
