"""The console's board: orders grouped by status, filtered, paged, re-read on live events."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.console.render import (
    ConsoleRoute,
    console_zone,
    page,
)
from app.console.session import ConsoleUser
from app.core.errors import InvalidInput
from app.db.models import OrderStatus, Role
from app.schemas.common import MAX_ID
from app.services import dispatch_board
from app.services import orders as orders_service
from app.services import stores as stores_service
from app.services.auth import Principal
from app.services.orders import OrderFilters

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
BOARD_PAGE = 100
# The board's columns, in the order work moves through them.
BOARD_GROUPS = (
    OrderStatus.NEW,
    OrderStatus.ASSIGNED,
    OrderStatus.ACCEPTED,
    OrderStatus.PICKED_UP,
    OrderStatus.DELIVERED,
    OrderStatus.FAILED,
    OrderStatus.CANCELED,
)


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a date like 2026-12-01") from None


def board_filters(
    status: Annotated[list[str] | None, Query(max_length=20)] = None,
    store: Annotated[str | None, Query(max_length=20)] = None,
    courier: Annotated[str | None, Query(max_length=20)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    to: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> OrderFilters:
    statuses = tuple(s for s in status or [] if s)
    if any(s not in set(OrderStatus) for s in statuses):
        raise InvalidInput("unknown status")
    ids: dict[str, int | None] = {}
    for name, raw in (("store", store), ("courier", courier)):
        if raw and not raw.isdigit():
            raise InvalidInput(f"{name} must be a number")
        ids[name] = int(raw) if raw else None
    first, last = _day(from_, "from"), _day(to, "to")
    zone = console_zone()  # a day is the business day (BUSINESS_TIMEZONE)
    return OrderFilters(
        statuses=statuses,
        store_id=ids["store"],
        courier_id=ids["courier"],
        created_from=datetime.combine(first, time(), zone) if first else None,
        created_to=datetime.combine(last + timedelta(days=1), time(), zone) if last else None,
        q=q.strip() if q and q.strip() else None,
    )


def _board_context(
    request: Request, session: Session, principal: Principal, cursor: int | None
) -> dict[str, Any]:
    try:
        filters = board_filters(
            status=request.query_params.getlist("status"),
            store=request.query_params.get("store"),
            courier=request.query_params.get("courier"),
            from_=request.query_params.get("from"),
            to=request.query_params.get("to"),
            q=request.query_params.get("q"),
        )
        error = None
    except InvalidInput as exc:
        filters, error = OrderFilters(), exc.detail
    orders, next_cursor = orders_service.list_orders(
        session, principal=principal, filters=filters, limit=BOARD_PAGE, cursor=cursor
    )
    groups = [(s, [o for o in orders if o.status == s]) for s in BOARD_GROUPS]
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor" and v]
    next_url = None
    if next_cursor is not None:
        next_url = "/console?" + urlencode([*params, ("cursor", str(next_cursor))])
    return {
        "groups": groups,
        "filters": filters,
        "filter_error": error,
        "query": urlencode(params),
        "next_url": next_url,
        "cursor": cursor,
        "stores": stores_service.list_stores(session, principal=principal),
        "couriers": dispatch_board.courier_loads(session, available_only=False)
        if principal.role == Role.ADMIN
        else [],
        "statuses": BOARD_GROUPS,
        "raw": dict(request.query_params),
        "now": datetime.now(UTC),
    }


Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("", response_class=HTMLResponse)
def board(
    request: Request, principal: ConsoleUser, session: SessionDep, cursor: Cursor = None
) -> HTMLResponse:
    context = _board_context(request, session, principal, cursor)
    return page(request, "board.html", principal=principal, **context)


@router.get("/board", response_class=HTMLResponse)
def board_fragment(
    request: Request, principal: ConsoleUser, session: SessionDep, cursor: Cursor = None
) -> HTMLResponse:
    """The board alone: what the page swaps in when the live stream says something changed."""
    context = _board_context(request, session, principal, cursor)
    return page(request, "_board.html", principal=principal, **context)
