"""OrderRead for a batch of orders, with store and courier names in two queries, not N."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, literal, select, union_all
from sqlalchemy.orm import Session

from app.db.models import Order, Store, User
from app.schemas.orders import OrderRead

ORDER_COLUMNS = tuple(Order.__table__.c)


def with_names(query: Select[Any]) -> Select[Any]:
    """The same query as plain columns plus the store and courier names, in one round trip.

    Lists need no ORM identity map or change tracking: rows go straight into OrderRead,
    which costs a fraction of hydrating Order objects and then looking names up.
    """
    return (
        query.with_only_columns(
            *ORDER_COLUMNS,
            Store.name.label("store_name"),
            User.name.label("courier_name"),
        )
        .outerjoin(Store, Store.id == Order.store_id)
        .outerjoin(User, User.id == Order.courier_id)
    )


def reads_from_rows(rows: Sequence[Any]) -> list[OrderRead]:
    """Rows of a with_names() query as OrderRead."""
    return [OrderRead.model_validate(row._mapping) for row in rows]


def order_reads(session: Session, orders: Sequence[Order]) -> list[OrderRead]:
    if not orders:
        return []
    store_ids = {o.store_id for o in orders}
    courier_ids = {o.courier_id for o in orders if o.courier_id is not None}
    # Both name lookups in one round trip.
    names = session.execute(
        union_all(
            select(literal("store"), Store.id, Store.name).where(Store.id.in_(store_ids)),
            select(literal("user"), User.id, User.name).where(User.id.in_(courier_ids)),
        )
    ).all()
    stores = {id_: name for kind, id_, name in names if kind == "store"}
    couriers = {id_: name for kind, id_, name in names if kind == "user"}
    return [
        OrderRead.model_validate(order).model_copy(
            update={
                "store_name": stores.get(order.store_id),
                "courier_name": couriers.get(order.courier_id) if order.courier_id else None,
            }
        )
        for order in orders
    ]


def order_read(session: Session, order: Order) -> OrderRead:
    return order_reads(session, [order])[0]
