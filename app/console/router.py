"""The console mounted on the app: its pages, its static files and its live stream."""

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import Response, StreamingResponse

from app.console import board, couriers, orders, proofs, reports, signin, stores
from app.console.assets import assets
from app.console.render import ConsoleRoute
from app.console.session import StreamConsoleUser
from app.core.errors import NotFound
from app.realtime.stream import sse_stream
from app.schemas.common import MAX_ID

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

# A year, immutable: the URL carries the file's hash, so a changed file is a new URL.
STATIC_CACHE = "public, max-age=31536000, immutable"


@router.get("/static/{version}/{name}")
async def static(version: str, name: str) -> Response:
    asset = assets().get(name)
    if asset is None or asset.version != version:
        raise NotFound("No such file")
    return Response(
        asset.body, media_type=asset.media_type, headers={"Cache-Control": STATIC_CACHE}
    )


@router.get("/events")
async def events(
    request: Request,
    principal: StreamConsoleUser,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_ID)] = None,
) -> StreamingResponse:
    """The API's live stream, signed in by the console cookie: no token in the page or a URL.

    The board re-reads itself on each event; EventSource resumes with Last-Event-ID.
    """
    body = sse_stream(hub=request.app.state.hub, principal=principal, last_event_id=last_event_id)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def install_console(app: FastAPI) -> None:
    for part in (
        signin.router,
        board.router,
        orders.router,
        proofs.router,
        couriers.router,
        stores.router,
        reports.router,
        router,
    ):
        app.include_router(part)
