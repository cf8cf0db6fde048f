"""Liveness and readiness probes."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import SessionDep
from app.api.errors import responses
from app.services.health import readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses=responses(503))
def ready(session: SessionDep) -> JSONResponse:
    ok, detail = readiness(session)
    if ok:
        return JSONResponse({"status": "ok"})
    return JSONResponse(
        {
            "type": "https://zariz.dev/problems/not_ready",
            "title": "Not ready",
            "status": 503,
            "detail": detail,
            "code": "not_ready",
        },
        status_code=503,
        media_type="application/problem+json",
    )
