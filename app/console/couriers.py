"""Console admin pages for couriers: list with live load, create, edit, status, duty, password."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.console.forms import form_values, parse_form, require_admin, submit_form
from app.console.render import CheckedForm, ConsoleRoute, page, redirect
from app.console.session import ConsoleUser
from app.core.security import PASSWORD_MIN_LENGTH
from app.db.models import UserStatus
from app.schemas.admin import (
    CourierCreate,
    CourierUpdate,
)
from app.schemas.common import MAX_ID
from app.services import couriers as couriers_service
from app.services import dispatch_board
from app.services.auth import Principal

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
COURIER_FIELDS = ("name", "email", "phone", "password", "capacity_boxes")


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
    require_admin(principal)
    return _couriers_page(request, session, principal)


@router.get("/couriers/table", response_class=HTMLResponse)
def couriers_table(request: Request, principal: ConsoleUser, session: SessionDep) -> HTMLResponse:
    """The list alone: swapped in when the live stream reports a change of load."""
    require_admin(principal)
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
    require_admin(principal)
    values = form_values(form, COURIER_FIELDS)

    def apply() -> str:
        courier = couriers_service.create_courier(session, data=parse_form(CourierCreate, values))
        return f"/console/couriers/{courier.id}"

    def show(errors: dict[str, str], status_code: int) -> Response:
        return _couriers_page(
            request, session, principal, values=values, errors=errors, status_code=status_code
        )

    return submit_form(request, apply=apply, show=show, fields=COURIER_FIELDS)


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
        active_orders=couriers_service.held_orders(session, courier_id=courier.id),
        values=shown,
        errors=errors or {},
        statuses=[s.value for s in UserStatus if s != UserStatus.PENDING],
    )


@router.get("/couriers/{courier_id}", response_class=HTMLResponse)
def courier_page(
    request: Request, courier_id: ItemId, principal: ConsoleUser, session: SessionDep
) -> HTMLResponse:
    require_admin(principal)
    return _courier_page(request, session, principal, courier_id)


@router.post("/couriers/{courier_id}/edit", response_class=HTMLResponse)
def edit_courier(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    require_admin(principal)
    values = form_values(form, ("name", "email", "phone", "capacity_boxes"))
    return _update_courier(request, session, principal, courier_id, values)


@router.post("/couriers/{courier_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    require_admin(principal)
    values = form_values(form, ("password",))
    # The edit schema reads a blank password as "unchanged"; a reset needs a real one.
    if len(values.get("password", "")) < PASSWORD_MIN_LENGTH:
        return _courier_page(
            request,
            session,
            principal,
            courier_id,
            errors={
                "password": f"The password must have at least {PASSWORD_MIN_LENGTH} characters"
            },
            status_code=422,
        )
    return _update_courier(request, session, principal, courier_id, values)


@router.post("/couriers/{courier_id}/duty", response_class=HTMLResponse)
def courier_duty(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    require_admin(principal)
    raw = form_values(form, ("on_duty",)).get("on_duty", "")
    if raw not in ("true", "false"):
        return _courier_page(
            request,
            session,
            principal,
            courier_id,
            errors={"on_duty": "Choose on duty or off duty"},
            status_code=422,
        )
    couriers_service.set_duty(session, courier_id=courier_id, on_duty=raw == "true", by="admin")
    return redirect(request, f"/console/couriers/{courier_id}")


@router.post("/couriers/{courier_id}/status", response_class=HTMLResponse)
def courier_status(
    request: Request,
    courier_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    require_admin(principal)
    values = form_values(form, ("status",))
    return _update_courier(request, session, principal, courier_id, values)


def _update_courier(
    request: Request,
    session: Session,
    principal: Principal,
    courier_id: int,
    values: dict[str, str],
) -> Response:
    def apply() -> str:
        data = parse_form(CourierUpdate, values)
        couriers_service.update_courier(session, courier_id=courier_id, data=data)
        return f"/console/couriers/{courier_id}"

    def show(errors: dict[str, str], status_code: int) -> Response:
        return _courier_page(
            request, session, principal, courier_id, errors=errors, status_code=status_code
        )

    return submit_form(
        request,
        apply=apply,
        show=show,
        fields=(*COURIER_FIELDS, "status"),
    )
