"""CSV export of the orders in scope, streamed in pages so memory stays flat for any range."""

import csv
import io
from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.services.auth import Principal
from app.services.orders import OrderFilters, list_orders

BOM = "\ufeff"  # Excel opens UTF-8 (Hebrew names included) only with a byte-order mark
PAGE = 500
COLUMNS = [
    "id",
    "created_at",
    "store_name",
    "status",
    "courier_name",
    "recipient_first_name",
    "recipient_last_name",
    "phone",
    "delivery_address",
    "pickup_address",
    "boxes_count",
    "price_total",
    "notes",
    "accepted_at",
    "picked_up_at",
    "delivered_at",
    "failed_at",
    "canceled_at",
    "cancel_reason",
    "failure_reason",
]


def _row(values: dict[str, object]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    cells = []
    for column in COLUMNS:
        value = values.get(column)
        text = (
            value.isoformat()
            if hasattr(value, "isoformat")
            else ("" if value is None else str(value))
        )
        # A cell starting with = + - @ would run as a formula in Excel: quote it as text.
        if text[:1] in ("=", "+", "-", "@") and column not in ("phone",):
            text = "'" + text
        cells.append(text)
    writer.writerow(cells)
    return buffer.getvalue()


def export_csv(session: Session, *, principal: Principal, filters: OrderFilters) -> Iterator[str]:
    yield BOM + _row({c: c for c in COLUMNS})
    cursor: int | None = None
    while True:
        reads, cursor = list_orders(
            session, principal=principal, filters=filters, limit=PAGE, cursor=cursor
        )
        for read in reads:
            yield _row(read.model_dump())
        if cursor is None:
            break
    session.rollback()
