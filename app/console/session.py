"""Console sign-in: a cookie bound to a session row, checked on every request; CSRF tokens."""

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.core.config import get_settings
from app.core.errors import Forbidden, Unauthorized
from app.db.models import Role
from app.services import auth as auth_service
from app.services.auth import IssuedTokens, Principal

# The access token (it names the session row) and the refresh token (logout needs it). Both
# httpOnly: page scripts never see them, so no token can leak from the page or into a URL.
ACCESS_COOKIE = "zariz_console"
REFRESH_COOKIE = "zariz_console_refresh"
# Before sign-in there is no session to bind a CSRF token to: the login form double-submits.
LOGIN_CSRF_COOKIE = "zariz_console_login"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInRequired(Exception):
    """No live console session: the page redirects to the sign-in form."""


class CsrfRefused(Forbidden):
    code, title = "csrf_refused", "The form expired or came from elsewhere"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or get_settings().hsts


def set_session_cookies(request: Request, response: Response, tokens: IssuedTokens) -> None:
    # The cookie outlives the access token on purpose: every request checks the session row
    # (authenticate(allow_expired=True)), so the row, not the token's expiry, decides.
    max_age = tokens.refresh_expires_in
    for name, value in (
        (ACCESS_COOKIE, tokens.access_token),
        (REFRESH_COOKIE, tokens.refresh_token),
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)


def clear_session_cookies(request: Request, response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(
            name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(request)
        )


def refresh_token_of(request: Request) -> str | None:
    return request.cookies.get(REFRESH_COOKIE)


def authenticate_cookie(session: Session, request: Request) -> Principal:
    token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise SignInRequired
    try:
        # The same check as every API request, against the session row: logout, suspension,
        # a password change elsewhere or a revoked family end the console session at once.
        return auth_service.authenticate(session, token, allow_expired=True)
    except (Unauthorized, Forbidden) as exc:
        raise SignInRequired from exc


def get_console_principal(
    request: Request, session: Annotated[Session, Depends(get_session)]
) -> Principal:
    principal = authenticate_cookie(session, request)
    if principal.role not in (Role.STORE, Role.ADMIN):
        # Couriers work in the app; the console has nothing for them.
        raise SignInRequired
    return principal


ConsoleUser = Annotated[Principal, Depends(get_console_principal)]


def csrf_token(principal: Principal) -> str:
    """Bound to the session row: it changes with every sign-in and dies with the session."""
    key = get_settings().jwt_secret.encode()
    message = f"zariz-console-csrf:{principal.session_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_csrf(principal: Principal, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, csrf_token(principal)):
        raise CsrfRefused("Reload the page and try again")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def check_login_csrf(request: Request, submitted: str | None) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not submitted or not expected or not hmac.compare_digest(submitted, expected):
        raise CsrfRefused("Reload the page and try again")


def get_stream_principal(
    request: Request,
    # Closed when the endpoint returns, not when the stream ends hours later.
    session: Annotated[Session, Depends(get_session, scope="function")],
) -> Principal:
    return get_console_principal(request, session)


StreamConsoleUser = Annotated[Principal, Depends(get_stream_principal)]
