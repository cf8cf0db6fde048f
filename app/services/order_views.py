"""OrderRead for a batch of orders, with store and courier names in two queries, not N; and
list rows rendered straight to OrderRead's JSON."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    literal,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from app.db.base import UTCDateTime
from app.db.models import Order, Store, User
from app.schemas.orders import OrderRead
from app.schemas.windows import FINAL

ORDER_COLUMNS = tuple(Order.__table__.c)
_NAMES = {"store_name": Store.name, "courier_name": User.name}


def with_names(query: Select[Any]) -> Select[Any]:
    """The same query as plain columns plus the store and courier names, in one round trip.

    Lists need no ORM identity map or change tracking: rows go straight into OrderRead,
    which costs a fraction of hydrating Order objects and then looking names up.
    """
    return _joined(
        query.with_only_columns(*ORDER_COLUMNS, *(c.label(k) for k, c in _NAMES.items()))
    )


def _joined(query: Select[Any]) -> Select[Any]:
    return query.outerjoin(Store, Store.id == Order.store_id).outerjoin(
        User, User.id == Order.courier_id
    )


# The clock OrderRead.late reads, bound per execution (rendered_params): the columns are built
# once, not per request.
NOW = bindparam("rendered_now", type_=UTCDateTime())


def _late() -> ColumnElement[bool]:
    # OrderRead.late (schemas/windows.is_late). The final statuses as plain inequalities: an
    # IN list is an "expanding" parameter, re-rendered into the SQL on every execution.
    return and_(
        Order.deliver_before.is_not(None),
        *(Order.status != status for status in sorted(FINAL)),
        Order.deliver_before < NOW,
    )


def _delivered_late() -> ColumnElement[bool]:
    # OrderRead.delivered_late (schemas/windows.was_delivered_late).
    return and_(
        Order.status == "delivered",
        Order.deliver_before.is_not(None),
        Order.delivered_at.is_not(None),
        Order.delivered_at > Order.deliver_before,
    )


def _rendered_columns() -> tuple[ColumnElement[Any], ...]:
    """OrderRead's fields in its order (the order of the keys in its JSON), then its computed
    fields, each computed by the database."""
    columns: list[ColumnElement[Any]] = []
    for name in OrderRead.model_fields:
        found = _NAMES.get(name, Order.__table__.c.get(name))
        if found is None:
            raise LookupError(f"OrderRead.{name} is neither a column of orders nor a name")
        # The status as the stored string: no OrderStatus built per row only to be dumped.
        column = type_coerce(found, String) if name == "status" else found
        columns.append(column.label(name))
    computed = {"late": _late(), "delivered_late": _delivered_late()}
    if list(computed) != list(OrderRead.model_computed_fields):
        raise LookupError("OrderRead's computed fields changed: compute them here too")
    return (*columns, *(value.label(name) for name, value in computed.items()))


_RENDERED_COLUMNS = _rendered_columns()


def rendered(query: Select[Any]) -> Select[Any]:
    """The same query as the columns of OrderRead's JSON, in its order, names included.
    Execute it with rendered_params()."""
    return _joined(query.with_only_columns(*_RENDERED_COLUMNS))


def rendered_params(now: datetime) -> dict[str, datetime]:
    """`now` stands for the clock OrderRead.late reads when a model is dumped."""
    return {NOW.key: now}


RENDERED_KEYS = (*OrderRead.model_fields, *OrderRead.model_computed_fields)
# The values are already what OrderRead holds (str, int, bool, None, aware UTC datetimes), so
# pydantic-core's inference dumps them exactly as OrderRead's typed fields would.
_ROWS = TypeAdapter(list[dict[str, Any]])


def render_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows of a rendered() query as the JSON array of their OrderReads, with no validation:
    the database's values are trusted, as they are when OrderRead validates them."""
    keys = RENDERED_KEYS
    return _ROWS.dump_json([dict(zip(keys, row, strict=True)) for row in rows])


def reads_from_rows(rows: Sequence[Any]) -> list[OrderRead]:
    """Rows of a with_names() or rendered() query as OrderRead."""
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
