"""Console sign-in and sign-out, with the API's accounts and login rate limits."""

from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.api.deps import ClientAddress, get_session
from app.console.render import CheckedForm, ConsoleRoute, page, redirect
from app.console.session import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SignInRequired,
    authenticate_cookie,
    check_login_csrf,
    clear_session_cookies,
    new_login_csrf,
    refresh_token_of,
    set_session_cookies,
)
from app.core.errors import Unauthorized, ZarizError
from app.db.models import Role
from app.services import auth as auth_service

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


def _login_page(
    request: Request, *, next_url: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    # Kept while it lives: two sign-in tabs, or a retry after a wrong password, stay valid.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = page(
        request,
        "login.html",
        principal=None,
        status_code=status_code,
        login_csrf=token,
        next_url=next_url,
        error=error,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="lax", max_age=3600
    )
    return response


@router.get("/login")
def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:
    try:
        authenticate_cookie(session, request)
    except SignInRequired:
        return _login_page(request, next_url=_safe_next(next))
    return redirect(request, _safe_next(next))


FormText = Annotated[str, Form(max_length=2000)]


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    client: ClientAddress,
    identifier: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
    next: FormText = "",
) -> Response:
    next_url = _safe_next(next)
    check_login_csrf(request, csrf_token)
    if not identifier.strip() or not password:
        return _login_page(
            request,
            next_url=next_url,
            error="Enter your email or phone and your password.",
            status_code=422,
        )
    try:
        tokens = auth_service.login(
            session,
            identifier=identifier,
            password=password,
            client=client,
            user_agent=request.headers.get("user-agent"),
        )
    except ZarizError as exc:
        return _login_page(request, next_url=next_url, error=exc.detail, status_code=exc.status)
    if tokens.user.role == Role.COURIER:
        auth_service.logout(session, refresh_token=tokens.refresh_token)
        return _login_page(
            request,
            next_url=next_url,
            error="Couriers use the Zariz app; the console is for stores and dispatchers.",
            status_code=403,
        )
    response = redirect(request, next_url)
    set_session_cookies(request, response, tokens)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: CheckedForm) -> Response:
    refresh = refresh_token_of(request)
    if refresh:
        # Already ended (e.g. revoked elsewhere): signing out still clears the cookies.
        with suppress(Unauthorized):
            auth_service.logout(session, refresh_token=refresh)
    response = redirect(request, "/console/login")
    clear_session_cookies(request, response)
    return response
