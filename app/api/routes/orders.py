"""Order endpoints: create, list, read, timeline, export, every transition, edit, delete."""

from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api import conditional
from app.api.deps import (
    AdminUser,
    CourierUser,
    CurrentUser,
    ReleasedSession,
    SessionDep,
    SessionsDep,
    StoreOrAdmin,
    StreamingStoreOrAdmin,
    export_page_slots,
    require_roles,
    session_slots,
)
from app.api.errors import responses
from app.api.idempotency import IdempotencyDep
from app.api.params import PathId, QueryId, date_bound
from app.api.streaming import BoundedStreamingResponse
from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.db.models import OrderStatus, Role
from app.schemas.common import MAX_ID, Text
from app.schemas.orders import (
    AssignBody,
    CancelBody,
    CourierActionBody,
    OrderCreate,
    OrderDeleted,
    OrderEventRead,
    OrderRead,
    OrderUpdate,
    RedeliverBody,
    StatusBody,
)
from app.services import order_lifecycle as lifecycle
from app.services import orders as orders_service
from app.services.auth import Principal
from app.services.order_export import open_export
from app.services.order_lists import complete_list, history_since
from app.services.order_views import order_read
from app.services.orders import OrderFilters

router = APIRouter(prefix="/v1/orders", tags=["orders"], responses=responses(401))

ACTION_ERRORS = responses(403, 404, 409, 422)

# Who may attempt an action is decided here, by role; whether this order allows it now is the
# service's decision (e.g. a store cancels only while the order is new or assigned).
StatusChanger = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.COURIER,
            Role.ADMIN,
            detail="Only the courier holding the order or an admin may change its status",
        )
    ),
]
Canceller = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.STORE, Role.ADMIN, detail="Couriers decline orders; they cannot cancel them"
        )
    ),
]
# After a failed delivery, the store (or dispatch) decides: another attempt, or back to the store.
AfterFailure = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.STORE,
            Role.ADMIN,
            detail="Only the order's store or an admin may redeliver or return a failed order",
        )
    ),
]
Editor = Annotated[
    Principal,
    Depends(require_roles(Role.STORE, Role.ADMIN, detail="Couriers cannot edit orders")),
]
PAGE_SIZE = 100  # a page asked for by `cursor` alone


StatusQ = Annotated[list[Text] | None, Query(description="repeatable, or a comma list")]
IdQ = QueryId
FromQ = Annotated[Text | None, Query(alias="from", description="date or datetime")]
ToQ = Annotated[Text | None, Query(alias="to", description="date (whole day) or datetime")]
SearchQ = Annotated[Text | None, Query(max_length=100, description="recipient name or phone")]
DueQ = Annotated[
    Text | None,
    Query(description="orders whose deliver_before is at or before this date or datetime"),
]
SortQ = Annotated[
    Literal["created", "due"] | None,
    Query(
        description="`created` (default): newest first; `due`: by deliver_before, soonest "
        "first, orders without one last, then by id. Pages of either sort are keyset cursors."
    ),
]
CursorQ = Annotated[
    Text | None,
    Query(
        max_length=100,
        description="from X-Next-Cursor: an order id, or the opaque cursor of a sort=due list",
    ),
]


async def order_filters(
    status: StatusQ = None,
    store_id: IdQ = None,
    store: IdQ = None,
    courier_id: IdQ = None,
    courier: IdQ = None,
    created_from: FromQ = None,
    created_to: ToQ = None,
    q: SearchQ = None,
    due_before: DueQ = None,
    sort: SortQ = None,
) -> OrderFilters:
    """The filters shared by the list and the CSV export (async: parsing only, no thread hop)."""
    statuses = tuple(s.strip() for raw in status or [] for s in raw.split(",") if s.strip())
    unknown = [s for s in statuses if s not in set(OrderStatus)]
    if unknown:
        # Named from the known list, never echoed: the input is the caller's, not ours to print.
        raise InvalidInput(f"status must be one of: {', '.join(OrderStatus)}")
    return OrderFilters(
        statuses=statuses,
        store_id=store_id or store,
        courier_id=courier_id or courier,
        created_from=date_bound(created_from, "from", end=False),
        created_to=date_bound(created_to, "to", end=True),
        q=q.strip() if q and q.strip() else None,
        due_before=_due_bound(due_before),
        by_due=sort == "due",
    )


def _due_bound(value: str | None) -> datetime | None:
    """deliver_before <= this; a date means up to the end of that business day."""
    moment = date_bound(value, "due_before", end=True)
    if moment is not None and value is not None and len(value.strip()) == 10:
        return moment - timedelta(microseconds=1)  # the next midnight itself is the next day
    return moment


def parse_cursor(raw: str | None, filters: OrderFilters) -> orders_service.Cursor | None:
    if raw is None or not raw.strip():
        return None
    if filters.by_due:
        return orders_service.DueCursor.decode(raw.strip())
    if not raw.strip().isascii() or not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise InvalidInput("cursor must be an order id from X-Next-Cursor")
    return int(raw)


FiltersDep = Annotated[OrderFilters, Depends(order_filters)]


@router.post("", status_code=201, response_model=OrderRead, responses=responses(403, 404, 409, 422))
def create_order(
    body: OrderCreate, principal: StoreOrAdmin, session: SessionDep, idem: IdempotencyDep
) -> Response:
    return idem.create(
        lambda key: orders_service.create_order(
            session, principal=principal, data=body, idempotency_key=key
        )
    )


LIST_DESCRIPTION = (
    "Without `limit` and `cursor`: the complete list (admins and stores every order the filters "
    "select; couriers their active orders, the pool and their recent history), streamed as one "
    "array. With either: one page, the next in `X-Next-Cursor` and `Link`."
)


@router.get(
    "",
    response_model=list[OrderRead],
    responses={**responses(422), 304: {"description": "Unchanged since the `If-None-Match` ETag"}},
    description=LIST_DESCRIPTION,
)
async def list_orders(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    filters: FiltersDep,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: CursorQ = None,
) -> Response:
    # Async: an unchanged poll (304) is answered here, with no row read and no thread hop.
    complete = limit is None and cursor is None
    since = history_since() if complete and principal.role == Role.COURIER else None
    tag = await conditional.validator(request, principal, session, extra=str(since or ""))
    unchanged = conditional.not_modified(request, tag)
    if unchanged is not None:
        return unchanged
    if complete:
        # The real clients neither send limit nor follow cursors, and the iOS app deletes the
        # cached orders a sync omits: a list without them must be complete.
        body = await anyio.to_thread.run_sync(
            lambda: complete_list(session, principal=principal, filters=filters, since=since)
        )
        return conditional.mark(StreamingResponse(body, media_type="application/json"), tag)
    page_cursor = parse_cursor(cursor, filters)
    # The service renders the page's JSON itself (each row dumped once, never validated);
    # `response_model` stays for the OpenAPI document only.
    page, next_cursor = await anyio.to_thread.run_sync(
        lambda: orders_service.list_orders_json(
            session,
            principal=principal,
            filters=filters,
            limit=limit or PAGE_SIZE,
            cursor=page_cursor,
        )
    )
    response = Response(page, media_type="application/json")
    if next_cursor is not None:
        token = (
            next_cursor.encode()
            if isinstance(next_cursor, orders_service.DueCursor)
            else str(next_cursor)
        )
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        url = f"{request.url.path}?{urlencode([*params, ('cursor', token)])}"
        response.headers["X-Next-Cursor"] = token
        response.headers["Link"] = f'<{url}>; rel="next"'
    return conditional.mark(response, tag)


@router.get("/export.csv", response_class=StreamingResponse, responses=responses(403, 422, 429))
async def export_orders(
    principal: StreamingStoreOrAdmin,
    session: ReleasedSession,
    sessions: SessionsDep,
    filters: FiltersDep,
) -> StreamingResponse:
    settings = get_settings()
    export = await open_export(
        session,
        sessions=sessions,
        page_slots=export_page_slots(),
        slots=session_slots(),
        principal=principal,
        filters=filters,
        settings=settings,
    )
    return BoundedStreamingResponse(
        export.body,
        send_timeout=settings.export_send_timeout,
        on_close=export.release,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
    )


@router.get("/{order_id}", responses=responses(404))
def get_order(order_id: PathId, principal: CurrentUser, session: SessionDep) -> OrderRead:
    return order_read(
        session, orders_service.get_order(session, principal=principal, order_id=order_id)
    )


@router.get("/{order_id}/events", responses=responses(404))
def order_events(
    order_id: PathId, principal: CurrentUser, session: SessionDep
) -> list[OrderEventRead]:
    events = orders_service.timeline(session, principal=principal, order_id=order_id)
    return [OrderEventRead.model_validate(e) for e in events]


# The body is optional: the apps send none; an offline app sends {"occurred_at": ...}.
ActionBody = Annotated[CourierActionBody | None, Body()]


@router.post("/{order_id}/claim", response_model=OrderRead, responses=ACTION_ERRORS)
def claim(
    order_id: PathId,
    courier: CourierUser,
    session: SessionDep,
    idem: IdempotencyDep,
    body: ActionBody = None,
) -> Response:
    occurred_at = body.occurred_at if body else None
    return idem.order(
        lambda: lifecycle.claim_order(
            session, order_id=order_id, courier=courier, occurred_at=occurred_at
        )
    )


@router.post("/{order_id}/accept", response_model=OrderRead, responses=ACTION_ERRORS)
def accept(
    order_id: PathId,
    courier: CourierUser,
    session: SessionDep,
    idem: IdempotencyDep,
    body: ActionBody = None,
) -> Response:
    return claim(order_id, courier, session, idem, body)


@router.post("/{order_id}/decline", response_model=OrderRead, responses=ACTION_ERRORS)
def decline(
    order_id: PathId,
    courier: CourierUser,
    session: SessionDep,
    idem: IdempotencyDep,
    body: ActionBody = None,
) -> Response:
    occurred_at = body.occurred_at if body else None
    return idem.order(
        lambda: lifecycle.decline_order(
            session, order_id=order_id, courier=courier, occurred_at=occurred_at
        )
    )


@router.post("/{order_id}/assign", response_model=OrderRead, responses=ACTION_ERRORS)
def assign(
    order_id: PathId, body: AssignBody, admin: AdminUser, session: SessionDep, idem: IdempotencyDep
) -> Response:
    return idem.order(
        lambda: lifecycle.assign_order(
            session, order_id=order_id, courier_id=body.courier_id, admin=admin
        )
    )


@router.post("/{order_id}/unassign", response_model=OrderRead, responses=ACTION_ERRORS)
def unassign(
    order_id: PathId, admin: AdminUser, session: SessionDep, idem: IdempotencyDep
) -> Response:
    return idem.order(lambda: lifecycle.unassign_order(session, order_id=order_id, admin=admin))


@router.post("/{order_id}/status", response_model=OrderRead, responses=ACTION_ERRORS)
def change_status(
    order_id: PathId,
    body: StatusBody,
    principal: StatusChanger,
    session: SessionDep,
    idem: IdempotencyDep,
) -> Response:
    return idem.order(
        lambda: lifecycle.set_status(
            session,
            order_id=order_id,
            status=OrderStatus(body.status),
            note=body.note,
            reason=body.reason,
            actor=principal,
            reason_code=body.reason_code,
            recipient_name=body.recipient_name,
            occurred_at=body.occurred_at,
        )
    )


@router.post("/{order_id}/cancel", response_model=OrderRead, responses=ACTION_ERRORS)
def cancel(
    order_id: PathId,
    principal: Canceller,
    session: SessionDep,
    idem: IdempotencyDep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> Response:
    # No body, no reason, or an empty one: all mean "canceled without a reason".
    reason = body.reason if body else None
    return idem.order(
        lambda: lifecycle.cancel_order(session, order_id=order_id, reason=reason, actor=principal)
    )


@router.post("/{order_id}/redeliver", response_model=OrderRead, responses=ACTION_ERRORS)
def redeliver(
    order_id: PathId,
    principal: AfterFailure,
    session: SessionDep,
    idem: IdempotencyDep,
    body: Annotated[RedeliverBody | None, Body()] = None,
) -> Response:
    # No body or no courier_id: back to the pool (open mode) or to unassigned (assign mode).
    courier_id = body.courier_id if body else None
    return idem.order(
        lambda: lifecycle.redeliver_order(
            session, order_id=order_id, courier_id=courier_id, actor=principal
        )
    )


@router.post("/{order_id}/return", response_model=OrderRead, responses=ACTION_ERRORS)
def return_to_store(
    order_id: PathId, principal: AfterFailure, session: SessionDep, idem: IdempotencyDep
) -> Response:
    return idem.order(lambda: lifecycle.return_order(session, order_id=order_id, actor=principal))


@router.patch("/{order_id}", responses=ACTION_ERRORS)
def update_order(
    order_id: PathId, body: OrderUpdate, principal: Editor, session: SessionDep
) -> OrderRead:
    order = orders_service.update_order(session, principal=principal, order_id=order_id, data=body)
    return order_read(session, order)


@router.delete("/{order_id}", responses=responses(403, 404))
def delete_order(order_id: PathId, admin: AdminUser, session: SessionDep) -> OrderDeleted:
    order = orders_service.delete_order(session, principal=admin, order_id=order_id)
    return OrderDeleted(id=order.id)
