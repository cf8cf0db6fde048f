"""Helpers of the console's admin forms: admin-only, field values, schema parsing, error fields,
and the one shape of an admin form post (apply it, or show the page again with its messages)."""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.console.render import field_errors, redirect
from app.core.errors import Forbidden, ZarizError
from app.db.models import Role
from app.services.auth import Principal


def require_admin(principal: Principal) -> None:
    if principal.role != Role.ADMIN:
        raise Forbidden("Only admins manage couriers and stores")


def form_values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    # Passwords are taken as typed: a space in one is part of it.
    return {
        n: v if n.endswith("password") else v.strip()
        for n in names
        if isinstance(v := form.get(n), str)
    }


M = TypeVar("M", bound=BaseModel)


def parse_form(model: type[M], values: dict[str, str], *, prefix: str = "") -> M:
    # A blank field is a field not sent: the schemas read a missing key as "unchanged".
    given: dict[str, Any] = {k.removeprefix(prefix): v for k, v in values.items() if v}
    return model.model_validate(given)


def error_field(exc: ZarizError, fields: tuple[str, ...], prefix: str = "") -> str:
    """Which field a service's refusal is about, when it names one (e.g. an email in use)."""
    detail = exc.detail.lower()
    for field in fields:
        if field.removeprefix(prefix).replace("_", " ") in detail:
            return field
    return "form"


# Shows the page again with one message per field and the status the API would answer.
ShowErrors = Callable[[dict[str, str], int], Response]


def submit_form(
    request: Request,
    *,
    apply: Callable[[], str],
    show: ShowErrors,
    fields: tuple[str, ...],
    prefix: str = "",
    form_key: str = "form",
    name_errors: Callable[[ValidationError], dict[str, str]] = field_errors,
) -> Response:
    """Runs apply (parse with the API's schema, call its service, say where to go next): a
    redirect there when it lands; bad input (422) or a refusal shown next to its field; a
    missing object stays a 404 page."""
    try:
        done = apply()
    except ValidationError as exc:
        return show({f"{prefix}{k}": v for k, v in name_errors(exc).items()}, 422)
    except ZarizError as exc:
        if exc.status == 404:
            raise
        field = error_field(exc, fields, prefix=prefix)
        return show({form_key if field == "form" else field: exc.detail}, exc.status)
    return redirect(request, done)
