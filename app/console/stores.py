"""Console admin pages for stores: create, edit, status, the owner's sign-in, the proof policy."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.console.forms import form_values, parse_form, require_admin, submit_form
from app.console.render import CheckedForm, ConsoleRoute, page
from app.console.session import ConsoleUser
from app.core.config import get_settings
from app.db.models import StoreStatus
from app.schemas.admin import (
    StoreCreate,
    StoreCredentials,
    StoreUpdate,
)
from app.schemas.common import MAX_ID
from app.schemas.proofs import ProofPolicy, Requirement
from app.services import proofs as proofs_service
from app.services import stores as stores_service
from app.services.auth import Principal
from app.services.failure_reasons import failure_reasons

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

    def apply() -> str:
        store = stores_service.create_store(session, data=parse_form(StoreCreate, values))
        return f"/console/stores/{store.id}"

    def show(errors: dict[str, str], status_code: int) -> Response:
        return _stores_page(
            request, session, principal, values=values, errors=errors, status_code=status_code
        )

    return submit_form(request, apply=apply, show=show, fields=STORE_FIELDS)


def _store_page(
    request: Request,
    session: Session,
    principal: Principal,
    store_id: int,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    shown_policy: dict[str, Any] | None = None,
) -> HTMLResponse:
    store = stores_service.get_store(session, store_id=store_id)
    users = stores_service.list_store_users(session, store_id=store_id)
    policy = proofs_service.store_policy(session, store_id=store_id)
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
        policy=shown_policy or _policy_values(policy),
        requirements=[r.value for r in Requirement],
        reasons=failure_reasons(get_settings()),
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

    def apply() -> str:
        # Unlike the API's PATCH, the form always sends every field: blank clears it.
        data = StoreUpdate.model_validate({k: v or None for k, v in values.items()})
        stores_service.update_store(session, store_id=store_id, data=data)
        return f"/console/stores/{store_id}"

    def show(errors: dict[str, str], status_code: int) -> Response:
        # Bad input keeps what was typed (the status form has nothing typed to keep).
        typed = values if status_code == 422 and "status" not in values else None
        return _store_page(
            request,
            session,
            principal,
            store_id,
            values=typed,
            errors=errors,
            status_code=status_code,
        )

    return submit_form(
        request,
        apply=apply,
        show=show,
        fields=(*STORE_FIELDS, "status"),
    )


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

    def apply() -> str:
        data = parse_form(StoreCredentials, values, prefix="owner_")
        stores_service.set_store_credentials(
            session,
            store_id=store_id,
            name=data.name,
            email=data.email,
            phone=data.phone,
            password=data.password,
        )
        return f"/console/stores/{store_id}"

    def show(errors: dict[str, str], status_code: int) -> Response:
        return _store_page(
            request, session, principal, store_id, errors=errors, status_code=status_code
        )

    return submit_form(
        request,
        apply=apply,
        show=show,
        fields=OWNER_FIELDS,
        prefix="owner_",
        form_key="owner_form",
    )


POLICY_FIELDS = ("delivered_photo", "delivered_signature", "failed_photo", "failed_signature")
REASONS_FIELD = "failed_photo_required_for"


def _policy_values(policy: ProofPolicy) -> dict[str, Any]:
    return {
        "delivered_photo": policy.delivered.photo,
        "delivered_signature": policy.delivered.signature,
        "failed_photo": policy.failed.photo,
        "failed_signature": policy.failed.signature,
        REASONS_FIELD: list(policy.failed.photo_required_for),
    }


@router.post("/stores/{store_id}/proof-policy", response_class=HTMLResponse)
def store_proof_policy(
    request: Request,
    store_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    form: CheckedForm,
) -> Response:
    """The same policy as PUT /v1/admin/stores/{id}/proof-policy, every part of it sent."""
    require_admin(principal)
    values = form_values(form, POLICY_FIELDS)
    reasons = [r for r in form.getlist(REASONS_FIELD) if isinstance(r, str)]
    shown: dict[str, Any] = {**values, REASONS_FIELD: reasons}

    def apply() -> str:
        # A missing select is a missing field (a 422 naming it), not the schema's default.
        body: dict[str, dict[str, Any]] = {
            outcome: {kind: values.get(f"{outcome}_{kind}") for kind in ("photo", "signature")}
            for outcome in ("delivered", "failed")
        }
        body["failed"]["photo_required_for"] = reasons
        policy = ProofPolicy.model_validate(body)
        proofs_service.set_store_policy(
            session, store_id=store_id, policy=policy, settings=get_settings()
        )
        return f"/console/stores/{store_id}#proof-policy"

    def show(errors: dict[str, str], status_code: int) -> Response:
        # The service's one refusal (a reason code it does not know) is about the reasons.
        if "photo_required_for" in errors.get("policy_form", ""):
            errors = {REASONS_FIELD: errors["policy_form"]}
        return _store_page(
            request,
            session,
            principal,
            store_id,
            errors=errors,
            status_code=status_code,
            shown_policy=shown,
        )

    return submit_form(
        request,
        apply=apply,
        show=show,
        fields=(),
        form_key="policy_form",
        name_errors=_policy_errors,
    )


def _policy_errors(exc: ValidationError) -> dict[str, str]:
    """One message per select: the schema's location (delivered, photo) is the field's name."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"][:2]]
        errors.setdefault("_".join(loc) if len(loc) == 2 else "policy_form", error["msg"])
    return errors
