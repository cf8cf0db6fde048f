"""Console reports: Today (counts and orders per hour as SVG) and the CSV export."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.api.deps import (
    SessionsDep,
    export_page_slots,
    get_session,
    session_slots,
)
from app.api.streaming import BoundedStreamingResponse
from app.console.board import board_filters
from app.console.render import ConsoleRoute, console_zone, page
from app.console.session import ConsoleUser, get_console_principal
from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.services.auth import Principal
from app.services.order_export import open_export
from app.services.order_stats import day_summary

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 720, 160, 4


def _chart(per_hour: list[int]) -> list[dict[str, float | int | str]]:
    """Bars of the orders-per-hour chart, laid out here so the template only draws them."""
    top = max(per_hour) or 1
    slot = CHART_WIDTH / len(per_hour)
    bars: list[dict[str, float | int | str]] = []
    for hour, count in enumerate(per_hour):
        height = round(CHART_HEIGHT * count / top, 1)
        bars.append(
            {
                "x": round(hour * slot + BAR_GAP / 2, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(slot - BAR_GAP, 1),
                "height": height,
                "count": count,
                "label": f"{hour:02d}",
            }
        )
    return bars


@router.get("/today", response_class=HTMLResponse)
def today(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    day: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    zone = console_zone()
    error = None
    chosen = datetime.now(zone).date()
    if day:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            error = "day must be a date like 2026-12-01"
    summary = day_summary(session, principal=principal, day=chosen, zone=zone)
    return page(
        request,
        "today.html",
        principal=principal,
        summary=summary,
        bars=_chart(summary.per_hour),
        chart_width=CHART_WIDTH,
        chart_height=CHART_HEIGHT,
        zone=zone.key,
        error=error,
    )


@router.get("/export", response_class=HTMLResponse)
def export_form(request: Request, principal: ConsoleUser) -> HTMLResponse:
    today_local = datetime.now(console_zone()).date().isoformat()
    return page(
        request, "export.html", principal=principal, values={"from": today_local, "to": today_local}
    )


def _released_principal(
    request: Request,
    # Closed when the endpoint returns, not when the file has been sent.
    session: Annotated[Session, Depends(get_session, scope="function")],
) -> Principal:
    return get_console_principal(request, session)


@router.get("/export.csv", response_class=StreamingResponse)
async def export_csv(
    request: Request,
    principal: Annotated[Principal, Depends(_released_principal)],
    session: Annotated[Session, Depends(get_session, scope="function")],
    sessions: SessionsDep,
) -> StreamingResponse:
    """The API's export (GET /v1/orders/export.csv): the same rows, columns and bounds."""
    params = request.query_params
    if not params.get("from") or not params.get("to"):
        raise InvalidInput("Pick the first and the last day of the export")
    filters = board_filters(
        status=params.getlist("status"),
        store=params.get("store"),
        courier=params.get("courier"),
        from_=params.get("from"),
        to=params.get("to"),
        q=params.get("q"),
    )
    settings = get_settings()
    export = await open_export(
        session,
        sessions=sessions,
        page_slots=export_page_slots(),
        slots=session_slots(),
        principal=principal,
        filters=filters,
        settings=settings,
    )
    return BoundedStreamingResponse(
        export.body,
        send_timeout=settings.export_send_timeout,
        on_close=export.release,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
    )
