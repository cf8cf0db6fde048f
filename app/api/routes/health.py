"""Liveness and readiness probes."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import SessionDep
from app.api.errors import problem, responses
from app.services.health import readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
def alive() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses=responses(503))
def ready(session: SessionDep) -> JSONResponse:
    ok, detail = readiness(session)
    if ok:
        return JSONResponse({"status": "ok"})
    return problem(503, "not_ready", "Not ready", detail)
