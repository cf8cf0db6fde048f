"""Rendering for the console: templates, its route class (errors as pages), and checked forms."""

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.console.assets import assets
from app.console.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    ConsoleUser,
    SignInRequired,
    check_csrf,
    csrf_token,
)
from app.core.config import get_settings
from app.core.errors import ZarizError
from app.services.auth import Principal

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _asset_url(name: str) -> str:
    asset = assets()[name]
    return f"/console/static/{asset.version}/{asset.name}"


def _asset_integrity(name: str) -> str:
    return assets()[name].integrity


def console_zone() -> ZoneInfo:
    return get_settings().business_zone


def _when(value: datetime | None) -> str:
    return value.astimezone(console_zone()).strftime("%Y-%m-%d %H:%M") if value else ""


templates.env.globals.update(asset_url=_asset_url, asset_integrity=_asset_integrity)
templates.env.filters["when"] = _when


def page(
    request: Request,
    name: str,
    *,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.update(
        user=principal.user if principal else None,
        is_admin=principal is not None and principal.role == "admin",
        csrf=csrf_token(principal) if principal else None,
        csrf_field=CSRF_FIELD,
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def redirect(request: Request, url: str) -> Response:
    # htmx follows a 303 inside its own request and would swap a whole page into a fragment:
    # it is told to navigate instead.
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as one readable message per form field, never echoing the input."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "form"
        errors.setdefault(field, error["msg"])
    return errors


class ConsoleRoute(APIRoute):
    """Console routes answer with pages: no session is a redirect to sign-in, a domain error
    or bad input a readable page with the same status the API would give."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return redirect(request, "/console/login?next=" + quote(target, safe=""))
            except ZarizError as exc:
                return page(
                    request,
                    "error.html",
                    principal=None,
                    status_code=exc.status,
                    title=exc.title,
                    detail=exc.detail,
                    code=exc.code,
                )
            except RequestValidationError:
                return page(
                    request,
                    "error.html",
                    principal=None,
                    status_code=422,
                    title="Not a valid address",
                    detail="Check the link and try again.",
                    code="invalid_input",
                )

        return console_handler


async def checked_form(request: Request, principal: ConsoleUser) -> FormData:
    """Every state-changing console request: the form, once its CSRF token matched."""
    form = await request.form()
    submitted = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    check_csrf(principal, submitted if isinstance(submitted, str) else None)
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None
