"""OrderRead for a batch of orders, with store and courier names in two queries, not N."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Order, Store, User
from app.schemas.orders import OrderRead


def order_reads(session: Session, orders: Sequence[Order]) -> list[OrderRead]:
    store_ids = {o.store_id for o in orders}
    courier_ids = {o.courier_id for o in orders if o.courier_id is not None}
    stores = (
        dict(session.execute(select(Store.id, Store.name).where(Store.id.in_(store_ids))).all())
        if store_ids
        else {}
    )
    couriers = (
        dict(session.execute(select(User.id, User.name).where(User.id.in_(courier_ids))).all())
        if courier_ids
        else {}
    )
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
