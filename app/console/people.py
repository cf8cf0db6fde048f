"""Console admin pages: couriers (create, edit, status, password) and stores (owner, status)."""

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.api.deps import get_session
from app.console.render import CheckedForm, ConsoleRoute, field_errors, page, redirect
from app.console.session import ConsoleUser
from app.core.errors import Forbidden, ZarizError
from app.db.models import Role, StoreStatus, UserStatus
from app.schemas.admin import (
    CourierCreate,
    CourierUpdate,
    StoreCreate,
    StoreCredentials,
    StoreUpdate,
)
from app.schemas.common import MAX_ID
from app.services import couriers as couriers_service
from app.services import dispatch_board
from app.services import stores as stores_service
from app.services.auth import Principal

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
COURIER_FIELDS = ("name", "email", "phone", "password", "capacity_boxes")
STORE_FIELDS = ("name", "pickup_address", "phone", "box_limit", "hours_text")
MIN_PASSWORD = 8  # as the API's Password type
OWNER_FIELDS = ("owner_name", "owner_email", "owner_phone", "owner_password")


def _admin(principal: Principal) -> None:
    if principal.role != Role.ADMIN:
        raise Forbidden("Only admins manage couriers and stores")


def _values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    # Passwords are taken as typed: a space in one is part of it.
    return {
        n: v if n.endswith("password") else v.strip()
        for n in names
        if isinstance(v := form.get(n), str)
    }


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], values: dict[str, str], *, prefix: str = "") -> M:
    # A blank field is a field not sent: the schemas read a missing key as "unchanged".
    given: dict[str, Any] = {k.removeprefix(prefix): v for k, v in values.items() if v}
    return model.model_validate(given)


def _error_field(exc: ZarizError, fields: tuple[str, ...], prefix: str = "") -> str:
    """Which field a service's refusal is about, when it names one (e.g. an email in use)."""
    detail = exc.detail.lower()
    for field in fields:
        if field.removeprefix(prefix).replace("_", " ") in detail:
            return field
    return "form"


# -- couriers ------------------------------------------------------------------------------


def _couriers_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    loads = {c.id: c for c in dispatch_board.courier_loads(session, available_only=False)}
    return page(
        request,
        "couriers.html",
        principal=principal,
        status_code=status_code,
        couriers=couriers_service.list_couriers(session),
        loads=loads,
        values=values or {},
        errors=errors or {},
        statuses=[s.value for s in UserStatus if s != UserStatus.PENDING],
    )


@router.get("/couriers", response_class=HTMLResponse)
def couriers(request: Request, principal: ConsoleUser, session: SessionDep) -> HTMLResponse:
    _admin(principal)
    return _couriers_page(request, session, principal)


@router.get("/couriers/table", response_class=HTMLResponse)
def couriers_table(request: Request, principal: ConsoleUser, session: SessionDep) -> HTMLResponse:
    """The list alone: swapped in when the live stream reports a change of load."""
    _admin(principal)
    loads = {c.id: c for c in dispatch_board.courier_loads(session, available_only=False)}
    return page(
        request,
        "_couriers_table.html",
        principal=principal,
        couriers=couriers_service.list_couriers(session),
        loads=loads,
    )


@router.post("/couriers", response_class=HTMLResponse)
def create_courier(
    request: Request, principal: ConsoleUser, session: SessionDep, form: CheckedForm
) -> Response:
    _admin(principal)
    values = _values(form, COURIER_FIELDS)
    try:
        data = _parse(CourierCreate, values)
        courier = couriers_service.create_courier(
            session,
            name=data.name,
            email=data.email,
            phone=data.phone,
            password=data.password,
            capacity_boxes=data.capacity_boxes,
        )
    except ValidationError as exc:
        return _couriers_page(
            request, session, principal, values=values, errors=field_errors(exc), status_code=422
        )
    except ZarizError as exc:
        errors = {_error_field(exc, COURIER_FIELDS): exc.detail}
        return _couriers_page(
            request, session, principal, values=values, errors=errors, status_code=exc.status
        )
    return redirect(request, f"/console/couriers/{courier.id}")


def _courier_page(
    request: Request,
    session: Session,
    principal: Principal,
    courier_id: int,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    courier = couriers_service.get_courier(session, courier_id=courier_id)
    shown = values or {
        "name": courier.name,
        "email": courier.email or "",
        "phone": courier.phone or "",
        "capacity_boxes": str(courier.capacity_boxes),
    }
    return page(
        request,
        "courier.html",
        principal=principal,
        status_code=status_code,
        courier=courier,
        values=shown,
        errors=errors or {},
        statuses=[s.value for s in UserStatus if s != UserStatus.PENDING],
    )


@router.get("/couriers/{courier_id}", response_class=HTMLResponse)
def courier_page(
    request: Request, courier_id: ItemId, principal: ConsoleUser, session: SessionDep
) -> HTMLResponse:
    _admin(principal)
    return _courier_page(request, session, principal, courier_id)


@router.post("/couriers/{courier_id}/edit", response_class=HTMLResponse)
def edit_courier(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    _admin(principal)
    values = _values(form, ("name", "email", "phone", "capacity_boxes"))
    return _update_courier(request, session, principal, courier_id, values)


@router.post("/couriers/{courier_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    _admin(principal)
    values = _values(form, ("password",))
    # The edit schema reads a blank password as "unchanged"; a reset needs a real one.
    if len(values.get("password", "")) < MIN_PASSWORD:
        return _courier_page(
            request,
            session,
            principal,
            courier_id,
            errors={"password": f"The password must have at least {MIN_PASSWORD} characters"},
            status_code=422,
        )
    return _update_courier(request, session, principal, courier_id, values)


@router.post("/couriers/{courier_id}/status", response_class=HTMLResponse)
def courier_status(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    _admin(principal)
    values = _values(form, ("status",))
    return _update_courier(request, session, principal, courier_id, values)


def _update_courier(
    request: Request,
    session: Session,
    principal: Principal,
    courier_id: int,
    values: dict[str, str],
) -> Response:
    try:
        data = _parse(CourierUpdate, values)
        couriers_service.update_courier(
            session, courier_id=courier_id, **data.model_dump(exclude_unset=True)
        )
    except ValidationError as exc:
        return _courier_page(
            request,
            session,
            principal,
            courier_id,
            errors=field_errors(exc),
            status_code=422,
        )
    except ZarizError as exc:
        if exc.status == 404:
            raise
        field = _error_field(exc, (*COURIER_FIELDS, "status"))
        return _courier_page(
            request,
            session,
            principal,
            courier_id,
            errors={field: exc.detail},
            status_code=exc.status,
        )
    return redirect(request, f"/console/couriers/{courier_id}")


# -- stores --------------------------------------------------------------------------------


def _stores_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "stores.html",
        principal=principal,
        status_code=status_code,
        stores=stores_service.list_stores(session, principal=principal),
        values=values or {},
        errors=errors or {},
    )


@router.get("/stores", response_class=HTMLResponse)
def stores(request: Request, principal: ConsoleUser, session: SessionDep) -> HTMLResponse:
    _admin(principal)
    return _stores_page(request, session, principal)


@router.post("/stores", response_class=HTMLResponse)
def create_store(
    request: Request, principal: ConsoleUser, session: SessionDep, form: CheckedForm
) -> Response:
    _admin(principal)
    values = _values(form, STORE_FIELDS)
    try:
        data = _parse(StoreCreate, values)
        store = stores_service.create_store(session, **data.model_dump())
    except ValidationError as exc:
        return _stores_page(
            request, session, principal, values=values, errors=field_errors(exc), status_code=422
        )
    except ZarizError as exc:
        errors = {_error_field(exc, STORE_FIELDS): exc.detail}
        return _stores_page(
            request, session, principal, values=values, errors=errors, status_code=exc.status
        )
    return redirect(request, f"/console/stores/{store.id}")


def _store_page(
    request: Request,
    session: Session,
    principal: Principal,
    store_id: int,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    store = stores_service.get_store(session, store_id=store_id)
    users = stores_service.list_store_users(session, store_id=store_id)
    shown = values or {
        "name": store.name,
        "pickup_address": store.pickup_address or "",
        "phone": store.phone or "",
        "box_limit": "" if store.box_limit is None else str(store.box_limit),
        "hours_text": store.hours_text or "",
    }
    return page(
        request,
        "store.html",
        principal=principal,
        status_code=status_code,
        store=store,
        users=users,
        values=shown,
        errors=errors or {},
        statuses=[s.value for s in StoreStatus],
    )


@router.get("/stores/{store_id}", response_class=HTMLResponse)
def store_page(
    request: Request, store_id: ItemId, principal: ConsoleUser, session: SessionDep
) -> HTMLResponse:
    _admin(principal)
    return _store_page(request, session, principal, store_id)


@router.post("/stores/{store_id}/edit", response_class=HTMLResponse)
def edit_store(
    request: Request,
    store_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    _admin(principal)
    values = _values(form, (*STORE_FIELDS, "status"))
    try:
        # Unlike the API's PATCH, the form always sends every field: blank clears it.
        data = StoreUpdate.model_validate({k: v or None for k, v in values.items()})
        stores_service.update_store(
            session, store_id=store_id, changes=data.model_dump(exclude_unset=True)
        )
    except ValidationError as exc:
        return _store_page(
            request,
            session,
            principal,
            store_id,
            values=values if "status" not in values else None,
            errors=field_errors(exc),
            status_code=422,
        )
    except ZarizError as exc:
        if exc.status == 404:
            raise
        return _store_page(
            request,
            session,
            principal,
            store_id,
            errors={_error_field(exc, (*STORE_FIELDS, "status")): exc.detail},
            status_code=exc.status,
        )
    return redirect(request, f"/console/stores/{store_id}")


@router.post("/stores/{store_id}/owner", response_class=HTMLResponse)
def store_owner(
    request: Request,
    store_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    _admin(principal)
    values = _values(form, OWNER_FIELDS)
    try:
        data = _parse(StoreCredentials, values, prefix="owner_")
        stores_service.set_store_credentials(
            session,
            store_id=store_id,
            name=data.name,
            email=data.email,
            phone=data.phone,
            password=data.password,
        )
    except ValidationError as exc:
        errors = {f"owner_{k}": v for k, v in field_errors(exc).items()}
        return _store_page(request, session, principal, store_id, errors=errors, status_code=422)
    except ZarizError as exc:
        if exc.status == 404:
            raise
        field = _error_field(exc, OWNER_FIELDS, prefix="owner_")
        return _store_page(
            request,
            session,
            principal,
            store_id,
            errors={field if field != "form" else "owner_form": exc.detail},
            status_code=exc.status,
        )
    return redirect(request, f"/console/stores/{store_id}")
