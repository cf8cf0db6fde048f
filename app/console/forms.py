"""Helpers of the console's admin forms: admin-only, field values, schema parsing, error fields."""

from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.datastructures import FormData

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
