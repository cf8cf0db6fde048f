"""GET /v1/orders without limit or cursor: the complete list a client shows, streamed."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.base import utcnow
from app.db.models import Role
from app.services.auth import Principal
from app.services.orders import Cursor, OrderFilters, list_orders_json

# Rows read per keyset page: each page is one short read transaction and a few hundred KB.
PAGE = 500


def history_since() -> datetime:
    """Where a courier's recent history starts, on a whole minute: the list changes with the
    clock only once a minute, and its ETag (which carries this) with it."""
    since = utcnow() - timedelta(days=get_settings().courier_history_days)
    return since.replace(second=0, microsecond=0)


def complete_filters(
    principal: Principal, filters: OrderFilters, *, since: datetime | None = None
) -> OrderFilters:
    """A courier's complete list is their active orders, the pool and their recent history."""
    if principal.role != Role.COURIER:
        return filters
    return replace(filters, finished_since=since or history_since())


def complete_list(
    session: Session,
    *,
    principal: Principal,
    filters: OrderFilters,
    since: datetime | None = None,
) -> Iterator[bytes]:
    """Every order in scope that the filters select, newest first, as the bytes of a JSON array.

    The first page is read before this returns, so a failing query is still a problem+json
    response; later pages are read as the client takes the body, each in its own short
    transaction, so memory stays flat and no transaction stays open across the whole list.
    """
    filters = complete_filters(principal, filters, since=since)
    first, cursor = list_orders_json(
        session, principal=principal, filters=filters, limit=PAGE, cursor=None
    )
    return _array(session, principal=principal, filters=filters, first=first, cursor=cursor)


def _array(
    session: Session,
    *,
    principal: Principal,
    filters: OrderFilters,
    first: bytes,
    cursor: Cursor | None,
) -> Iterator[bytes]:
    yield b"["
    page, separator = first, b""
    while True:
        if page != b"[]":
            # The page's JSON array without its brackets: the items of the one big array, one
            # chunk per page.
            yield separator + page[1:-1]
            separator = b","
        if cursor is None:
            break
        page, cursor = list_orders_json(
            session, principal=principal, filters=filters, limit=PAGE, cursor=cursor
        )
    yield b"]"
