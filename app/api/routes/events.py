"""Live updates: the pull feed of order events and the Server-Sent Events stream."""

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api import conditional
from app.api.deps import CurrentUser, SessionDep, StreamUser
from app.api.errors import responses
from app.realtime import feed as feed_service
from app.realtime.stream import sse_stream
from app.schemas.common import MAX_ID
from app.schemas.events import EventFeed

router = APIRouter(prefix="/v1/events", tags=["events"])

SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`retry:` first; then `id: <event_id>` + one `data: <json>` line per "
        "event (EventFeed.events items); `: ping` comments as heartbeats",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "",
    response_model=EventFeed,
    response_model_exclude_unset=True,
    responses={
        **responses(401, 422),
        304: {"description": "Unchanged since the `If-None-Match` ETag"},
    },
)
async def list_events(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Return events with a greater id")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    # Async: an unchanged poll (304) is answered here, with no row read and no thread hop.
    tag = await conditional.validator(request, principal, session)
    unchanged = conditional.not_modified(request, tag)
    if unchanged is not None:
        return unchanged
    body, settled = await anyio.to_thread.run_sync(
        lambda: feed_service.feed_page(session, principal=principal, after=after, limit=limit)
    )
    response = Response(body, media_type="application/json")
    # Held back below a young gap, the answer changes with the clock alone: no validator then.
    return conditional.mark(response, tag if settled else None)


@router.get("/sse", response_class=StreamingResponse, responses={**SSE_DOC, **responses(401, 422)})
async def stream_events(
    request: Request,
    auth: StreamUser,
    last_event_id_header: Annotated[
        int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_ID)
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="Resume after this event (the header wins)")
    ] = None,
) -> StreamingResponse:
    body = sse_stream(
        hub=request.app.state.hub,
        principal=auth.principal,
        last_event_id=last_event_id_header if last_event_id_header is not None else last_event_id,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
