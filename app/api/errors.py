"""problem+json: the one rendering of every error, its handlers, and its OpenAPI declaration."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import TransactionConflict, ZarizError, lock_conflict
from app.core.logging import request_id_var

log = logging.getLogger("zariz.errors")

PROBLEM_JSON = "application/problem+json"

# The one status table: the `code` and `title` of an error raised as a bare HTTP status (by
# FastAPI, Starlette or a dependency), and the description of that status in the OpenAPI document.
STATUSES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Validation error"),
    429: ("rate_limited", "Rate limited"),
    503: ("unavailable", "Service unavailable"),
}


def status_code_and_title(status: int) -> tuple[str, str]:
    return STATUSES.get(status, ("error", "Error"))


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[ProblemError] | None = None


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status it can answer, as problem+json."""
    return {
        code: {
            "model": Problem,
            "description": status_code_and_title(code)[1],
            "content": {PROBLEM_JSON: {}},
        }
        for code in codes
    }


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://zariz.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_var.get(),
        **extra,
    }


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, code, title, detail, **extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def error_problem(exc: ZarizError) -> JSONResponse:
    return problem(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc, msg and type: pydantic's `input` would echo passwords back.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ZarizError)
    async def _domain(_request: Request, exc: ZarizError) -> JSONResponse:
        return error_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(
            422,
            "validation_error",
            "Invalid input",
            "The request is not valid; see errors",
            errors=_validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = status_code_and_title(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(exc.status_code, code, title, detail, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def _database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        conflict = lock_conflict(exc)
        if conflict is not None:
            # Reached only where no service retried the transaction (or its retries ran out).
            log.warning("lock conflict answered 409: %s", conflict)
            return error_problem(TransactionConflict())
        # The database refused or dropped the connection (restart, failover, no free slots):
        # tell clients to retry rather than report a bug.
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return problem(
            503,
            "database_unavailable",
            "Service unavailable",
            "The database is unavailable; retry shortly",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "Internal error", "Something went wrong")
