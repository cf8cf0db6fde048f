"""CSV export of the orders in scope: bounded, read a page at a time in short transactions."""

import csv
import io
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from functools import partial

import anyio
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.core.errors import ExportTooLarge, TooManyExports
from app.db.models import Order
from app.services.auth import Principal
from app.services.orders import OrderFilters, filtered, list_orders

SessionFactory = Callable[[], AbstractContextManager[Session]]

BOM = "\ufeff"  # Excel opens UTF-8 (Hebrew names included) only with a byte-order mark
# Rows read per transaction, and bytes per write: what one stalled client holds is about one
# page plus one chunk in the server's buffer, whatever the size of the export.
PAGE = 200
CHUNK = 64 * 1024
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
    "failure_reason_code",
    "recipient_name",
    "pickup_after",
    "pickup_before",
    "deliver_after",
    "deliver_before",
    "late",
    "delivered_late",
    "returned_at",
]
# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) leaks the
# sheet, DDE runs commands). Excel also takes the full-width forms of = + - @ for the ASCII ones.
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def neutralise(text: str) -> str:
    """A cell that could start a formula, as text: a leading apostrophe, nothing else changed.

    Every column, phones included: a phone is free text to the API, so `=1+cmd|...` fits in it.
    Leading spaces do not protect a cell (some importers trim them), so look past them too.
    """
    if text[:1] in FORMULA_START or text.lstrip(" ")[:1] in FORMULA_START:
        return "'" + text
    return text


def _cell(value: object, zone: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # The business's local time, with its offset: what the office reads, still exact.
        return value.astimezone(zone).isoformat()
    return neutralise(str(value))


def _rows(rows: list[dict[str, object]], zone: tzinfo = UTC) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([_cell(row.get(column), zone) for column in COLUMNS] for row in rows)
    return buffer.getvalue()


HEADER = BOM + _rows([{c: c for c in COLUMNS}])


class ExportLeases:
    """Exports in progress per user in this process; one user cannot take every export slot."""

    def __init__(self) -> None:
        self._open: Counter[int] = Counter()

    def acquire(self, user_id: int, *, limit: int) -> Callable[[], None]:
        # Called on the event loop only, so the check and the increment cannot interleave.
        if self._open[user_id] >= limit:
            raise TooManyExports(
                f"At most {limit} exports at once per user; wait for one to finish"
            )
        self._open[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[user_id] -= 1
                if self._open[user_id] <= 0:
                    del self._open[user_id]

        return release

    def open_for(self, user_id: int) -> int:
        return self._open[user_id]


def plan_export(
    session: Session, *, principal: Principal, filters: OrderFilters, max_rows: int
) -> int | None:
    """Refuses an export of more than max_rows; returns the cursor of its first page.

    The export is of the orders that exist now: pages start below the newest id seen here, so
    orders created while it streams neither push it past the limit nor shift its pages.
    """
    capped = filtered(principal, filters).with_only_columns(Order.id).limit(max_rows + 1)
    found = capped.subquery()
    count, newest = session.execute(select(func.count(), func.max(found.c.id))).one()
    session.commit()  # end the read: nothing of this request holds a connection while it streams
    if count > max_rows:
        raise ExportTooLarge(
            f"The export would have more than {max_rows} orders; narrow the dates or filters"
        )
    return None if newest is None else int(newest) + 1


def export_page(
    sessions: SessionFactory, *, principal: Principal, filters: OrderFilters, cursor: int
) -> tuple[bytes, int | None]:
    """One page as CSV bytes, read in a transaction of its own (closed before they are sent)."""
    with sessions() as session:
        reads, next_cursor = list_orders(
            session, principal=principal, filters=filters, limit=PAGE, cursor=cursor
        )
    zone = get_settings().business_zone
    next_id = next_cursor if isinstance(next_cursor, int) else None  # by id: never a DueCursor
    return _rows([read.model_dump() for read in reads], zone).encode(), next_id


async def export_csv(
    *,
    sessions: SessionFactory,
    page_slots: anyio.CapacityLimiter,
    slots: anyio.CapacityLimiter,
    principal: Principal,
    filters: OrderFilters,
    first_cursor: int | None,
) -> AsyncIterator[bytes]:
    """An async generator on the event loop: while the client is slow to read it holds no
    thread, no session slot and no connection, only the page being sent."""
    yield HEADER.encode()
    cursor = first_cursor
    while cursor is not None:
        # Exports share a few page slots; a page also takes a request session slot like any
        # request (sessions stay <= threads, so it never waits for a connection). Both go back
        # before the bytes go out.
        async with page_slots, slots:
            data, cursor = await anyio.to_thread.run_sync(
                partial(export_page, sessions, principal=principal, filters=filters, cursor=cursor)
            )
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]


LEASES = ExportLeases()


@dataclass(frozen=True)
class Export:
    body: AsyncIterator[bytes]
    release: Callable[[], None]  # to be called once the response is over, however it ended


async def open_export(
    session: Session,
    *,
    sessions: SessionFactory,
    page_slots: anyio.CapacityLimiter,
    slots: anyio.CapacityLimiter,
    principal: Principal,
    filters: OrderFilters,
    settings: Settings,
) -> Export:
    """Checks the bounds of one export (per-user concurrency, size) before anything is sent.

    Newest first whatever `sort` says: the export's pages are of the orders that exist when it
    starts, which its id keyset makes exact.
    """
    filters = replace(filters, by_due=False)
    release = LEASES.acquire(principal.user.id, limit=settings.export_max_per_user)
    try:
        first_cursor = await anyio.to_thread.run_sync(
            partial(
                plan_export,
                session,
                principal=principal,
                filters=filters,
                max_rows=settings.export_max_rows,
            )
        )
    except BaseException:
        release()
        raise
    body = export_csv(
        sessions=sessions,
        page_slots=page_slots,
        slots=slots,
        principal=principal,
        filters=filters,
        first_cursor=first_cursor,
    )
    return Export(body=body, release=release)
