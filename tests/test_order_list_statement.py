"""The default order list (no filters) runs one statement per scope shape, built once, with the
caller's ids as parameters (services/orders._default_page): the same statement object must
serve each courier and each store only their own orders."""

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Order, Role, Store, User
from app.services import orders
from app.services.auth import Principal
from app.services.orders import Cursor, OrderFilters, list_orders_json
from tests.builders import make_order, make_store, make_store_user, make_user


def principal_of(user: User, *stores: Store) -> Principal:
    return Principal(user=user, session_id=0, family_id=0, store_ids=tuple(s.id for s in stores))


def listed(db: Session, principal: Principal, limit: int) -> list[int]:
    """Every id of the default list, walked page by page with the cursor."""
    ids: list[int] = []
    cursor: Cursor | None = None
    while True:
        body, cursor = list_orders_json(
            db, principal=principal, filters=OrderFilters(), limit=limit, cursor=cursor
        )
        ids += [row["id"] for row in json.loads(body)]
        if cursor is None:
            return ids


def newest_first(ids: list[int]) -> list[int]:
    return sorted(ids, reverse=True)


def test_one_cached_statement_serves_each_caller_only_their_orders(db: Session) -> None:
    store_a, store_b, store_c = make_store(db), make_store(db), make_store(db)
    courier_a, courier_b = make_user(db, role=Role.COURIER), make_user(db, role=Role.COURIER)
    owner_a, owner_b = make_store_user(db, store=store_a), make_store_user(db, store=store_b)
    owner_bc = make_store_user(db, store=store_b)
    mine_a = [
        make_order(db, store=s, status="assigned", courier=courier_a) for s in (store_a, store_b)
    ]
    mine_b = [
        make_order(db, store=s, status="picked_up", courier=courier_b) for s in (store_b, store_c)
    ]
    pool = [make_order(db, store=s) for s in (store_a, store_c)]
    gone = make_order(db, store=store_a, status="assigned", courier=courier_a)
    gone.deleted_at = utcnow() - timedelta(minutes=1)
    db.commit()
    of_store = {
        s.id: [
            o.id for o in db.query(Order).filter(Order.store_id == s.id, Order.deleted_at.is_(None))
        ]
        for s in (store_a, store_b, store_c)
    }
    orders._default_page.cache_clear()

    for limit in (100, 1):  # one page, then a page per order through the cursor form
        for courier, own in ((courier_a, mine_a), (courier_b, mine_b), (courier_a, mine_a)):
            assert listed(db, principal_of(courier), limit) == newest_first(
                [o.id for o in own + pool]
            )
        assert listed(db, principal_of(owner_a, store_a), limit) == newest_first(
            of_store[store_a.id]
        )
        assert listed(db, principal_of(owner_b, store_b), limit) == newest_first(
            of_store[store_b.id]
        )
        both = principal_of(owner_bc, store_b, store_c)
        assert listed(db, both, limit) == newest_first(of_store[store_b.id] + of_store[store_c.id])

    # Couriers, stores, each with and without a cursor: four statements, reused for the rest.
    info = orders._default_page.cache_info()
    assert info.currsize == 4
    assert info.hits > info.misses
