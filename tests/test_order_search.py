"""The two list shapes made fast for 100k orders (docs/performance.md): phone-digit search on the
stored digits, and date ranges bounded by id."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import Order
from tests.builders import make_order
from tests.orders_helpers import ORDER_BODY, World


def ids(client: TestClient, headers: dict[str, str], **params: str) -> list[int]:
    response = client.get("/v1/orders", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return sorted(o["id"] for o in response.json())


def test_digits_are_stored_on_create_and_follow_an_edit(
    client: TestClient, db: Session, world: World
) -> None:
    body = {**ORDER_BODY, "phone": "+972 (52) 987-6543"}
    created = client.post("/v1/orders", json=body, headers=world.h_store).json()
    make_order(db, store=world.store)  # another phone (the builder's)
    stored = db.scalar(select(Order.phone_digits).where(Order.id == created["id"]))
    assert stored == "972529876543"
    for q in ("9876543", "52-987", "(52) 987", "+972 52", "987 6543"):
        assert ids(client, world.h_store, q=q) == [created["id"]], q

    edited = client.patch(
        f"/v1/orders/{created['id']}", json={"phone": "054-111-2222"}, headers=world.h_store
    )
    assert edited.status_code == 200, edited.text
    assert ids(client, world.h_store, q="1112222") == [created["id"]]
    assert ids(client, world.h_store, q="9876543") == []


def test_a_name_search_still_matches_names(client: TestClient, world: World) -> None:
    body = {**ORDER_BODY, "recipient_first_name": "Dana", "phone": "050-000-0001"}
    created = client.post("/v1/orders", json=body, headers=world.h_store).json()
    assert ids(client, world.h_store, q="dana") == [created["id"]]
    assert ids(client, world.h_store, q="levi") == [created["id"]]
    assert ids(client, world.h_store, q="noa") == []


def test_date_ranges_tolerate_ids_slightly_out_of_time_order(
    client: TestClient, db: Session, world: World
) -> None:
    """Ids follow created_at up to the commit skew of concurrent inserts: a later id may carry an
    earlier time (here by 30 minutes) and still be listed by its time."""
    first, second, third = (make_order(db, store=world.store) for _ in range(3))
    noon = datetime(2026, 3, 2, 12, tzinfo=UTC)
    times = {
        first.id: noon,
        second.id: noon - timedelta(minutes=30),
        third.id: noon + timedelta(days=3),
    }
    for order_id, at in times.items():
        db.execute(update(Order).where(Order.id == order_id).values(created_at=at))
    db.commit()

    def between(start: datetime | None, end: datetime | None) -> list[int]:
        params = {}
        if start is not None:
            params["from"] = start.isoformat()
        if end is not None:
            params["to"] = end.isoformat()
        return ids(client, world.h_admin, **params)

    assert between(noon - timedelta(minutes=15), None) == [first.id, third.id]
    assert between(None, noon - timedelta(minutes=15)) == [second.id]
    assert between(noon - timedelta(hours=1), noon + timedelta(minutes=1)) == [first.id, second.id]
    assert between(noon + timedelta(days=1), noon + timedelta(days=2)) == []
    assert between(noon + timedelta(days=2), None) == [third.id]
