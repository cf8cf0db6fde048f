"""Request dependencies: the database session, the authenticated caller and role guards."""

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio
from anyio.lowlevel import RunVar
from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import Forbidden, Unauthorized
from app.db.models import Role
from app.db.session import get_sessionmaker
from app.services import auth as auth_service
from app.services.auth import Principal
from app.services.order_export import SessionFactory

_session_slots: RunVar[anyio.CapacityLimiter] = RunVar("session_slots")
EXPORT_PAGE_THREADS = 4


def session_slots() -> anyio.CapacityLimiter:
    """At most as many request sessions at once as there are threadpool threads.

    A request can hold a connection between two threadpool hops (e.g. a read left open until
    its session closes). Unbounded, an overload had every thread waiting for a connection held
    by requests waiting for a thread: a deadlock broken only by the pool timeout, as 500s. With
    sessions <= threads <= connections (threads plus the SSE hub's fit the pool, see config),
    a thread never waits for a connection; extra requests queue here, before doing any work.
    """
    try:
        return _session_slots.get()
    except LookupError:
        slots = anyio.CapacityLimiter(get_settings().threadpool_size)
        _session_slots.set(slots)
        return slots


_export_page_slots: RunVar[anyio.CapacityLimiter] = RunVar("export_page_slots")


def export_page_slots() -> anyio.CapacityLimiter:
    """Pages of all CSV exports in this process are read a few at a time: many exports at once
    queue here for their next page instead of taking every thread and session slot (and, on
    SQLite, every turn at the database lock) from ordinary requests."""
    try:
        return _export_page_slots.get()
    except LookupError:
        slots = anyio.CapacityLimiter(EXPORT_PAGE_THREADS)
        _export_page_slots.set(slots)
        return slots


async def get_session() -> AsyncGenerator[Session, None]:
    # Opens and closes only: services commit, so nothing can fail here after a 2xx went out.
    # Async so that it costs no threadpool hop: creating a Session does no I/O, and closing one
    # does only while it holds a connection (a read left open, or an error before the commit),
    # which is then closed in a worker thread, shielded so a disconnect cannot leak it.
    async with session_slots():
        session = get_sessionmaker()()
        try:
            yield session
        finally:
            if session.in_transaction():
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(session.close)
            else:
                session.close()


SessionDep = Annotated[Session, Depends(get_session)]
# For responses that stream: closed (and its slot given back) when the endpoint returns, not
# when the body ends minutes or hours later.
ReleasedSession = Annotated[Session, Depends(get_session, scope="function")]


def get_sessions() -> SessionFactory:
    """Where a streamed body opens the short sessions of its later reads."""
    return get_sessionmaker()


SessionsDep = Annotated[SessionFactory, Depends(get_sessions)]

bearer = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def get_principal(
    session: SessionDep, token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    if not token:
        raise Unauthorized("Missing bearer token")
    # Async: a caller this process authenticated moments ago costs no threadpool hop and no
    # database read (app/services/principal_cache.py); only a miss goes to a worker thread.
    cached = auth_service.cached_principal(session, token)
    if cached is not None:
        return cached
    return await anyio.to_thread.run_sync(auth_service.authenticate, session, token)


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require_roles(
    *roles: Role, detail: str = "Your role may not do this"
) -> Callable[[Principal], Awaitable[Principal]]:
    """The coarse role check of an action, made at its route: services refuse only what
    depends on the order's state."""

    # Async: a check this small is not worth a threadpool hop.
    async def guard(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden(detail)
        return principal

    return guard


# One guard object: used by a router's `dependencies` and a route's AdminUser alike, FastAPI
# runs it once per request.
admin_only = require_roles(Role.ADMIN)
AdminUser = Annotated[Principal, Depends(admin_only)]
CourierUser = Annotated[Principal, Depends(require_roles(Role.COURIER))]
StoreUser = Annotated[Principal, Depends(require_roles(Role.STORE))]
StoreOrAdmin = Annotated[Principal, Depends(require_roles(Role.STORE, Role.ADMIN))]


def get_released_principal(
    session: ReleasedSession, token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    if not token:
        raise Unauthorized("Missing bearer token")
    return auth_service.authenticate(session, token)


async def _store_or_admin_released(
    principal: Annotated[Principal, Depends(get_released_principal)],
) -> Principal:
    if principal.role not in (Role.STORE, Role.ADMIN):
        raise Forbidden("Your role may not do this")
    return principal


# StoreOrAdmin for a streamed response: it holds no session while the body is sent.
StreamingStoreOrAdmin = Annotated[Principal, Depends(_store_or_admin_released)]


async def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


@dataclass(frozen=True)
class StreamAuth:
    principal: Principal


def get_stream_auth(
    # Closed when the endpoint returns, not when the stream ends hours later.
    session: Annotated[Session, Depends(get_session, scope="function")],
    bearer_token: Annotated[str | None, Depends(bearer)],
    token: Annotated[
        str | None,
        Query(description="Access token, for EventSource clients that cannot send headers"),
    ] = None,
) -> StreamAuth:
    raw = bearer_token or token
    if not raw:
        raise Unauthorized("Missing bearer token")
    # A stream lives as long as its session, not its access token (DESIGN §6): an expired
    # token whose session is still valid opens it too, here and nowhere else.
    principal = auth_service.authenticate(session, raw, allow_expired=True)
    return StreamAuth(principal=principal)


StreamUser = Annotated[StreamAuth, Depends(get_stream_auth)]
