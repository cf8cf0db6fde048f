"""GET /v1/orders renders rows straight to JSON (services/order_views.render_rows): the bytes must
be exactly what dumping each order's OrderRead gives, for every shape of row."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Order, OrderStatus, Role, Store, User
from app.schemas.orders import OrderRead
from app.services import order_lists
from app.services.auth import Principal
from app.services.order_lists import complete_list
from app.services.order_views import RENDERED_KEYS, order_reads
from app.services.orders import Cursor, OrderFilters, list_orders, list_orders_json
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user

ORDER_LIST = TypeAdapter(list[OrderRead])
HOUR = timedelta(hours=1)


def principal_of(user: User, *stores: Store) -> Principal:
    return Principal(user=user, session_id=0, family_id=0, store_ids=tuple(s.id for s in stores))


def expected(session: Session, orders: list[Order]) -> bytes:
    """What OrderRead gives for these orders, read as whole ORM objects (the path of a single
    order's GET, independent of the list's query), as the database holds them now."""
    for order in orders:
        session.refresh(order)
    return ORDER_LIST.dump_json(order_reads(session, orders))


@pytest.fixture
def varied(db: Session) -> dict[str, object]:
    """Orders of every status and shape, in two stores, one courier with an RTL name."""
    now = utcnow()
    store = make_store(db, name='מאפיית אבו חסן — "Abu" \\ Hassan')
    other_store = make_store(db, name="Other")
    courier = make_user(db, role=Role.COURIER, name="محمد כהן 🚚")
    other_courier = make_user(db, role=Role.COURIER, name="Dana")
    admin = make_user(db, role=Role.ADMIN)
    owner = make_store_user(db, store=store)
    orders: list[Order] = []
    for i, status in enumerate(OrderStatus):
        for with_courier in (False, True):
            order = make_order(
                db,
                store=store if i % 3 else other_store,
                status=status.value,
                courier=courier if with_courier else None,
                boxes_count=1 + i,
            )
            orders.append(order)
    shapes = iter(orders)

    def shape(**values: object) -> None:
        order = next(shapes)
        for key, value in values.items():
            setattr(order, key, value)

    # Nulls where a column allows them, and RTL text, quotes, escapes and emoji in strings.
    shape(pickup_address=None, floor=None, apartment=None, notes=None)
    shape(
        recipient_first_name="נועה",
        recipient_last_name="أحمد",
        notes='line 1\nline 2\t"quoted" \\ back \u0001 ctrl \u2028 sep 😀',
        street="רחוב הרצל",
    )
    # Time windows: all four ends, with and without microseconds, one of them only.
    shape(
        pickup_after=now.replace(microsecond=0) + HOUR,
        pickup_before=now + 2 * HOUR,
        deliver_after=now + 2 * HOUR,
        deliver_before=(now + 3 * HOUR).replace(microsecond=0),
    )
    shape(deliver_before=now + 5 * HOUR)
    # Late (past deliver_before, not final) and not late although past (final).
    shape(deliver_before=now - HOUR)
    shape(deliver_before=now - 2 * HOUR, status="canceled", canceled_at=now - HOUR)
    # Delivered late and delivered on time.
    shape(
        status="delivered",
        deliver_before=now - 3 * HOUR,
        delivered_at=now - 2 * HOUR,
        recipient_name="שירה",
    )
    shape(status="delivered", deliver_before=now - HOUR, delivered_at=now - 2 * HOUR)
    shape(status="delivered", delivered_at=now - HOUR)  # no window: never late
    # Failed with a reason and a code, returned; canceled with a reason.
    shape(
        status="failed",
        failed_at=now - HOUR,
        failure_reason="לא ענה — no answer",
        failure_reason_code="no_answer",
        returned_at=now - HOUR / 2,
        deliver_before=now - 2 * HOUR,
    )
    shape(status="canceled", canceled_at=now - HOUR, cancel_reason='Customer: "cancel"')
    # Every timestamp set, a large price, a bumped version.
    shape(
        assigned_at=now - 4 * HOUR,
        accepted_at=now - 3 * HOUR,
        picked_up_at=now - 2 * HOUR,
        price_total=2_000_000,
        boxes_multiplier=3,
        version=17,
    )
    # Deleted orders are left out of every list.
    shape(deleted_at=now - HOUR)
    shape(deleted_at=now - HOUR, status="new", courier_id=None)
    # Orders of the open pool (new, no courier) and one of another courier.
    db.add_all(orders)
    db.commit()
    mine = make_order(db, store=store, status="accepted", courier=other_courier)
    orders.append(mine)
    return {
        "store": store,
        "courier": courier,
        "admin": admin,
        "owner": owner,
        "orders": orders,
    }


def pages(
    session: Session, principal: Principal, filters: OrderFilters, limit: int
) -> Iterator[tuple[bytes, list[OrderRead]]]:
    cursor: Cursor | None = None
    while True:
        body, next_json = list_orders_json(
            session, principal=principal, filters=filters, limit=limit, cursor=cursor
        )
        reads, next_reads = list_orders(
            session, principal=principal, filters=filters, limit=limit, cursor=cursor
        )
        assert next_json == next_reads
        yield body, reads
        if next_json is None:
            return
        cursor = next_json


def test_rendered_keys_are_order_reads_fields_in_order() -> None:
    assert list(RENDERED_KEYS) == [
        *OrderRead.model_fields,
        *OrderRead.model_computed_fields,
    ]


@pytest.mark.parametrize("who", ["admin", "owner", "courier"])
@pytest.mark.parametrize("by_due", [False, True])
def test_each_page_is_byte_for_byte_the_order_reads_dump(
    db: Session, varied: dict[str, object], who: str, by_due: bool
) -> None:
    user = varied[who]
    assert isinstance(user, User)
    store = varied["store"]
    assert isinstance(store, Store)
    principal = principal_of(user, store) if who == "owner" else principal_of(user)
    seen: list[int] = []
    for body, reads in pages(db, principal, OrderFilters(by_due=by_due), limit=4):
        ids = [read.id for read in reads]
        orders = {o.id: o for o in db.scalars(select(Order).where(Order.id.in_(ids)))}
        assert body == expected(db, [orders[i] for i in ids])
        seen += ids
    deleted = {o.id for o in db.scalars(select(Order).where(Order.deleted_at.is_not(None)))}
    assert seen
    assert not deleted & set(seen)
    if who == "admin":
        # Every undeleted order, so every shape above went through the comparison.
        undeleted = select(func.count()).select_from(Order).where(Order.deleted_at.is_(None))
        assert len(seen) == db.scalar(undeleted)


def test_the_rendered_rows_carry_late_and_delivered_late(
    db: Session, varied: dict[str, object]
) -> None:
    admin = varied["admin"]
    assert isinstance(admin, User)
    reads, _ = list_orders(
        db, principal=principal_of(admin), filters=OrderFilters(), limit=100, cursor=None
    )
    body, _ = list_orders_json(
        db, principal=principal_of(admin), filters=OrderFilters(), limit=100, cursor=None
    )
    rendered = json.loads(body)
    assert [r["late"] for r in rendered].count(True) == 1
    assert [r["delivered_late"] for r in rendered].count(True) == 1
    assert rendered == [json.loads(r.model_dump_json()) for r in reads]


@pytest.mark.parametrize("who", ["admin", "owner", "courier"])
def test_the_complete_list_is_the_order_reads_array_across_pages(
    db: Session, varied: dict[str, object], who: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages, so the list is several chunks joined by the generator.
    monkeypatch.setattr(order_lists, "PAGE", 3)
    user = varied[who]
    assert isinstance(user, User)
    store = varied["store"]
    assert isinstance(store, Store)
    principal = principal_of(user, store) if who == "owner" else principal_of(user)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    chunks = list(complete_list(db, principal=principal, filters=OrderFilters(), since=since))
    assert len(chunks) > 3
    filters = order_lists.complete_filters(principal, OrderFilters(), since=since)
    reads, _ = list_orders(db, principal=principal, filters=filters, limit=500, cursor=None)
    ids = [read.id for read in reads]
    orders = {o.id: o for o in db.scalars(select(Order).where(Order.id.in_(ids)))}
    assert b"".join(chunks) == expected(db, [orders[i] for i in ids])


def test_an_empty_complete_list_is_an_empty_array(db: Session) -> None:
    store = make_store(db)
    owner = make_store_user(db, store=store)
    chunks = complete_list(db, principal=principal_of(owner, store), filters=OrderFilters())
    assert b"".join(chunks) == b"[]"


def test_the_route_sends_the_rendered_bytes(
    db: Session, client: TestClient, varied: dict[str, object]
) -> None:
    admin = varied["admin"]
    assert isinstance(admin, User)
    headers = auth_headers(db, admin)
    page = client.get("/v1/orders?limit=5", headers=headers)
    whole = client.get("/v1/orders", headers=headers)
    assert page.status_code == whole.status_code == 200
    ids = [o["id"] for o in whole.json()]
    orders = {o.id: o for o in db.scalars(select(Order).where(Order.id.in_(ids)))}
    assert whole.content == expected(db, [orders[i] for i in ids])
    assert page.content == expected(db, [orders[i] for i in ids[:5]])
