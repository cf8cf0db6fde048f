"""Console admin pages for stores: create, edit, status and the owner's sign-in."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.console.forms import error_field, form_values, parse_form, require_admin
from app.console.render import CheckedForm, ConsoleRoute, field_errors, page, redirect
from app.console.session import ConsoleUser
from app.core.errors import ZarizError
from app.db.models import StoreStatus
from app.schemas.admin import (
    StoreCreate,
    StoreCredentials,
    StoreUpdate,
)
from app.schemas.common import MAX_ID
from app.services import stores as stores_service
from app.services.auth import Principal

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
STORE_FIELDS = ("name", "pickup_address", "phone", "box_limit", "hours_text")
OWNER_FIELDS = ("owner_name", "owner_email", "owner_phone", "owner_password")


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
    require_admin(principal)
    return _stores_page(request, session, principal)


@router.post("/stores", response_class=HTMLResponse)
def create_store(
    request: Request, principal: ConsoleUser, session: SessionDep, form: CheckedForm
) -> Response:
    require_admin(principal)
    values = form_values(form, STORE_FIELDS)
    try:
        data = parse_form(StoreCreate, values)
        store = stores_service.create_store(session, data=data)
    except ValidationError as exc:
        return _stores_page(
            request, session, principal, values=values, errors=field_errors(exc), status_code=422
        )
    except ZarizError as exc:
        errors = {error_field(exc, STORE_FIELDS): exc.detail}
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
    require_admin(principal)
    return _store_page(request, session, principal, store_id)


@router.post("/stores/{store_id}/edit", response_class=HTMLResponse)
def edit_store(
    request: Request,
    store_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    require_admin(principal)
    values = form_values(form, (*STORE_FIELDS, "status"))
    try:
        # Unlike the API's PATCH, the form always sends every field: blank clears it.
        data = StoreUpdate.model_validate({k: v or None for k, v in values.items()})
        stores_service.update_store(session, store_id=store_id, data=data)
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
            errors={error_field(exc, (*STORE_FIELDS, "status")): exc.detail},
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
    require_admin(principal)
    values = form_values(form, OWNER_FIELDS)
    try:
        data = parse_form(StoreCredentials, values, prefix="owner_")
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
        field = error_field(exc, OWNER_FIELDS, prefix="owner_")
        return _store_page(
            request,
            session,
            principal,
            store_id,
            errors={field if field != "form" else "owner_form": exc.detail},
            status_code=exc.status,
        )
    return redirect(request, f"/console/stores/{store_id}")
