"""Console order pages: the new-order form, the order page and its actions."""

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.console.forms import form_values
from app.console.render import (
    CheckedForm,
    ConsoleRoute,
    field_errors,
    page,
    redirect,
    text,
)
from app.console.session import ConsoleUser
from app.core.config import get_settings
from app.core.errors import Forbidden, InvalidInput, ZarizError
from app.db.models import FINAL_STATUSES, OrderStatus, Role
from app.schemas.common import MAX_ID
from app.schemas.orders import OrderCreate, OrderRead, OrderUpdate
from app.schemas.windows import WINDOW_FIELDS
from app.services import actors, dispatch_board
from app.services import order_lifecycle as lifecycle
from app.services import orders as orders_service
from app.services import proofs as proofs_service
from app.services import stores as stores_service
from app.services.auth import Principal
from app.services.idempotency import KeyedRequest, run_order_action
from app.services.order_views import order_read
from app.services.pricing import price_for

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
ORDER_FIELDS = (
    "recipient_first_name",
    "recipient_last_name",
    "phone",
    "street",
    "building_no",
    "floor",
    "apartment",
    "pickup_address",
    "delivery_address",
    "notes",
    "boxes_count",
)
# The window inputs are datetime-local: wall-clock times in the business time zone.
WINDOW_INPUTS = (
    ("pickup_after", "Pickup from"),
    ("pickup_before", "Pickup by"),
    ("deliver_after", "Deliver from"),
    ("deliver_before", "Deliver by"),
)


def _zone_name() -> str:
    return get_settings().business_timezone


def windows_in(values: dict[str, str]) -> dict[str, str]:
    """The form's wall-clock window times as aware ISO datetimes in the business time zone.

    A value that does not parse is passed on as typed, for the schema to refuse by name.
    """
    zone = get_settings().business_zone
    out: dict[str, str] = {}
    for name in WINDOW_FIELDS:
        raw = values.get(name, "").strip()
        try:
            moment = datetime.fromisoformat(raw) if raw else None
        except ValueError:
            out[name] = raw
            continue
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        out[name] = moment.isoformat() if moment else ""
    return out


def windows_out(read: OrderRead) -> dict[str, str]:
    zone = get_settings().business_zone
    return {
        name: value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
        if (value := getattr(read, name))
        else ""
        for name in WINDOW_FIELDS
    }


# The form is rendered with the order's values: a blank optional field means "clear it", which
# the service does for an explicit null (the API's PATCH, where blank and missing mean
# "unchanged", is untouched). A blank pickup address keeps the one the order has: the service
# never clears it (the store's address was taken at creation).
CLEARED_WHEN_BLANK = ("floor", "apartment", "notes")
REQUIRED_ON_EDIT = (
    "recipient_first_name",
    "recipient_last_name",
    "phone",
    "street",
    "building_no",
    "delivery_address",
    "boxes_count",
)


def _edit_body(values: dict[str, str]) -> dict[str, str | None]:
    body: dict[str, str | None] = {k: v for k, v in values.items() if v != ""}
    body |= {f: None for f in CLEARED_WHEN_BLANK if values.get(f) == ""}
    return body


def _price(boxes: object) -> tuple[int, int] | None:
    try:
        count = int(str(boxes))
    except ValueError:
        return None
    return price_for(count) if 1 <= count <= 200 else None


def _new_order_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    stores = stores_service.list_stores(session, principal=principal)
    return page(
        request,
        "new_order.html",
        principal=principal,
        status_code=status_code,
        values=values,
        errors=errors or {},
        stores=[s for s in stores if s.status == "active"],
        price=_price(values.get("boxes_count", "1")),
        window_fields=WINDOW_INPUTS,
        zone=_zone_name(),
    )


@router.get("/orders/new", response_class=HTMLResponse)
def new_order_form(request: Request, principal: ConsoleUser, session: SessionDep) -> HTMLResponse:
    # One key per rendered form: a double submit (or a resubmitted POST) creates one order.
    values = {"boxes_count": "1", "idempotency_key": str(uuid.uuid4())}
    return _new_order_page(request, session, principal, values=values)


@router.get("/orders/price", response_class=HTMLResponse)
def price_preview(
    request: Request,
    principal: ConsoleUser,
    boxes_count: Annotated[str, Query(max_length=10)] = "1",
) -> HTMLResponse:
    return page(request, "_price.html", principal=principal, price=_price(boxes_count))


@router.post("/orders/new", response_class=HTMLResponse)
def create_order(
    request: Request, principal: ConsoleUser, session: SessionDep, form: CheckedForm
) -> Response:
    values = form_values(form, (*ORDER_FIELDS, *WINDOW_FIELDS, "store_id", "idempotency_key"))
    data_in: dict[str, Any] = {k: v for k, v in values.items() if v and k in ORDER_FIELDS}
    data_in.update({k: v for k, v in windows_in(values).items() if v})
    if values.get("store_id"):
        data_in["store_id"] = values["store_id"]
    try:
        data = OrderCreate.model_validate(data_in)
    except ValidationError as exc:
        return _new_order_page(
            request, session, principal, values=values, errors=field_errors(exc), status_code=422
        )
    key = values.get("idempotency_key") or str(uuid.uuid4())
    keyed = KeyedRequest(
        key=key,
        method="POST",
        path=request.url.path,
        body=json.dumps(data.model_dump(mode="json"), sort_keys=True).encode(),
    )
    try:
        outcome = run_order_action(
            session,
            principal=principal,
            request=keyed,
            status_code=201,
            order_id=None,
            action=lambda row: orders_service.create_order(
                session, principal=principal, data=data, idempotency_key=row
            ),
        )
    except ZarizError as exc:
        field = "store_id" if exc.status in (403, 404) or "store" in exc.detail else "form"
        field = next((w for w in WINDOW_FIELDS if exc.detail.startswith(w)), field)
        return _new_order_page(
            request,
            session,
            principal,
            values=values,
            errors={field: exc.detail},
            status_code=exc.status,
        )
    return redirect(request, f"/console/orders/{outcome.order.id}")


def _order_page(
    request: Request,
    session: Session,
    principal: Principal,
    order_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    order = orders_service.get_order(session, principal=principal, order_id=order_id)
    read = order_read(session, order)
    events = orders_service.timeline(session, principal=principal, order_id=order_id)
    proofs = proofs_service.list_proofs(session, principal=principal, order_id=order_id)
    is_admin = principal.role == Role.ADMIN
    final = order.status in FINAL_STATUSES
    # After a failure the store or dispatch decides (couriers never reach the console).
    after_failure = (
        order.status == OrderStatus.FAILED
        and order.returned_at is None
        and principal.role in (Role.ADMIN, Role.STORE)
    )
    may = {
        "assign": is_admin
        and order.status in (OrderStatus.NEW, OrderStatus.ASSIGNED, OrderStatus.ACCEPTED),
        "unassign": is_admin and order.status in (OrderStatus.ASSIGNED, OrderStatus.ACCEPTED),
        "cancel": not final
        and (is_admin or order.status in (OrderStatus.NEW, OrderStatus.ASSIGNED)),
        "edit": not final and (is_admin or order.status == OrderStatus.NEW),
        "delete": is_admin,
        "redeliver": after_failure,
        "return": after_failure,
    }
    pick = may["assign"] or may["redeliver"]
    couriers = dispatch_board.courier_loads(session, available_only=False) if pick else []
    edit_values = values or {
        **{f: "" if getattr(read, f) is None else str(getattr(read, f)) for f in ORDER_FIELDS},
        **windows_out(read),
    }
    return page(
        request,
        "order.html",
        principal=principal,
        status_code=status_code,
        order=read,
        events=events,
        names=actors.names_in(session, events=events, also=(p.uploaded_by_id for p in proofs)),
        proofs=proofs,
        may=may,
        couriers=couriers,
        errors=errors or {},
        values=edit_values,
        window_fields=WINDOW_INPUTS,
        zone=_zone_name(),
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    request: Request, order_id: OrderId, principal: ConsoleUser, session: SessionDep
) -> HTMLResponse:
    return _order_page(request, session, principal, order_id)


def _action(
    request: Request,
    session: Session,
    principal: Principal,
    order_id: int,
    field: str,
    run: Any,
) -> Response:
    """Runs one order action; its error is shown next to the action that caused it."""
    try:
        run()
    except ZarizError as exc:
        if exc.status == 404:
            raise
        return _order_page(
            request,
            session,
            principal,
            order_id,
            errors={field: exc.detail},
            status_code=exc.status,
        )
    return redirect(request, f"/console/orders/{order_id}")


@router.post("/orders/{order_id}/assign", response_class=HTMLResponse)
def assign(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    raw = text(form, "courier_id") or ""

    def run() -> None:
        if not raw.isdigit():
            raise InvalidInput("Pick a courier")
        lifecycle.assign_order(session, order_id=order_id, courier_id=int(raw), admin=principal)

    return _action(request, session, principal, order_id, "assign", _admin_only(principal, run))


@router.post("/orders/{order_id}/unassign", response_class=HTMLResponse)
def unassign(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    def run() -> None:
        lifecycle.unassign_order(session, order_id=order_id, admin=principal)

    return _action(request, session, principal, order_id, "assign", _admin_only(principal, run))


@router.post("/orders/{order_id}/cancel", response_class=HTMLResponse)
def cancel(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    reason = text(form, "reason")

    def run() -> None:
        if reason is not None and len(reason) > 500:
            raise InvalidInput("The reason can be at most 500 characters")
        lifecycle.cancel_order(session, order_id=order_id, reason=reason, actor=principal)

    return _action(request, session, principal, order_id, "cancel", run)


@router.post("/orders/{order_id}/redeliver", response_class=HTMLResponse)
def redeliver(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    raw = text(form, "courier_id") or ""

    def run() -> None:
        if raw and not raw.isdigit():
            raise InvalidInput("courier_id must be a courier or empty (back to the pool)")
        lifecycle.redeliver_order(
            session, order_id=order_id, courier_id=int(raw) if raw else None, actor=principal
        )

    return _action(request, session, principal, order_id, "redeliver", _dispatch(principal, run))


@router.post("/orders/{order_id}/return", response_class=HTMLResponse)
def return_to_store(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    def run() -> None:
        lifecycle.return_order(session, order_id=order_id, actor=principal)

    return _action(request, session, principal, order_id, "return", _dispatch(principal, run))


@router.post("/orders/{order_id}/edit", response_class=HTMLResponse)
def edit(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    values = form_values(form, (*ORDER_FIELDS, *WINDOW_FIELDS, "version"))
    # The form shows the current values, so an emptied required field was erased on purpose.
    errors = {f: "Field required" for f in REQUIRED_ON_EDIT if values.get(f) == ""}
    body = _edit_body({k: v for k, v in values.items() if k not in WINDOW_FIELDS})
    # An emptied window input clears that end ("" means none for the windows).
    body.update({k: v for k, v in windows_in(values).items() if k in values})
    try:
        data = OrderUpdate.model_validate(body)
    except ValidationError as exc:
        errors = field_errors(exc) | errors
    if errors:
        return _order_page(
            request,
            session,
            principal,
            order_id,
            errors=errors,
            values=values,
            status_code=422,
        )

    try:
        orders_service.update_order(session, principal=principal, order_id=order_id, data=data)
    except ZarizError as exc:
        if exc.status == 404:
            raise
        # A window refusal shows at its field with what was typed; any other beside "Save".
        field = next((w for w in WINDOW_FIELDS if exc.detail.startswith(w)), "edit")
        return _order_page(
            request,
            session,
            principal,
            order_id,
            errors={field: exc.detail},
            values=values if field != "edit" else None,
            status_code=exc.status,
        )
    return redirect(request, f"/console/orders/{order_id}")


@router.post("/orders/{order_id}/delete", response_class=HTMLResponse)
def delete(
    request: Request,
    order_id: OrderId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    def run() -> None:
        orders_service.delete_order(session, principal=principal, order_id=order_id)

    try:
        _admin_only(principal, run)()
    except ZarizError as exc:
        if exc.status == 404:
            raise
        return _order_page(
            request,
            session,
            principal,
            order_id,
            errors={"delete": exc.detail},
            status_code=exc.status,
        )
    return redirect(request, "/console")


def _dispatch(principal: Principal, run: Any) -> Any:
    """Admins and store users (the service scopes store users to their stores' orders)."""

    def guarded() -> None:
        if principal.role not in (Role.ADMIN, Role.STORE):
            raise Forbidden("Only the order's store or dispatch may do this")
        run()

    return guarded


def _admin_only(principal: Principal, run: Any) -> Any:
    def guarded() -> None:
        if principal.role != Role.ADMIN:
            raise Forbidden("Only dispatch (admins) may do this")
        run()

    return guarded
