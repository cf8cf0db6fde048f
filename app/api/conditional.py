"""Conditional GETs: a weak ETag on the order list and the events feed, and 304 when it matches.

The validator costs no row read (app/services/freshness.py), so an unchanged poll is answered
after authentication alone, which the principal cache also serves from memory.
`Cache-Control: private, no-cache` lets a client (URLSession, a browser) store the answer and
makes it revalidate every time: it sends `If-None-Match` by itself, and a 304 hands the app
the stored body (docs/performance.md, "Conditional GET").
"""

import anyio
from fastapi import Request, Response
from sqlalchemy.orm import Session

from app.db.session import is_postgres
from app.services import freshness
from app.services.auth import Principal

CACHE_CONTROL = "private, no-cache"


async def validator(
    request: Request, principal: Principal, session: Session, *, extra: str = ""
) -> str | None:
    """This caller's ETag for this request now, or None when this process cannot tell."""
    if not freshness.usable(is_postgres(session)):
        return None
    generation = freshness.deadline_read_due()
    if generation is not None:  # rare (after a commit or a passed deadline): off the event loop
        await anyio.to_thread.run_sync(freshness.read_deadline, session, generation)
    return freshness.etag(principal, f"{request.url.path}?{request.url.query}", extra=extra)


def not_modified(request: Request, tag: str | None) -> Response | None:
    if tag is None or not freshness.matches(request.headers.get("if-none-match"), tag):
        return None
    return Response(status_code=304, headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})


def mark(response: Response, tag: str | None) -> Response:
    response.headers["Cache-Control"] = CACHE_CONTROL
    if tag is not None:
        response.headers["ETag"] = tag
    return response
