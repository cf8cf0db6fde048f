"""Domain errors that carry their HTTP status and code, and their problem+json rendering."""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.logging import request_id_var

log = logging.getLogger("zariz.errors")

PROBLEM_JSON = "application/problem+json"


class ZarizError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}


class Unauthorized(ZarizError):
    status, code, title = 401, "unauthorized", "Not authenticated"

    def __init__(self, detail: str | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ZarizError):
    status, code, title = 403, "forbidden", "Forbidden"


class AccountInactive(Forbidden):
    code, title = "account_inactive", "Account is not active"


class StoreInactive(Forbidden):
    code, title = "store_inactive", "Store is not active"


class SignupDisabled(Forbidden):
    code, title = "signup_disabled", "Self sign-up is disabled"


class NotFound(ZarizError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ZarizError):
    status, code, title = 409, "conflict", "Conflict"


class DuplicateValue(Conflict):
    code, title = "duplicate", "Already exists"


class OrderAlreadyTaken(Conflict):
    code, title = "order_already_taken", "Order already taken"


class InvalidTransition(Conflict):
    code, title = "invalid_transition", "Invalid transition"


class CapacityExceeded(Conflict):
    code, title = "capacity_exceeded", "Courier capacity exceeded"


class VersionConflict(Conflict):
    code, title = "version_conflict", "Order changed since it was read"


class IdempotencyInProgress(Conflict):
    code, title = "idempotency_in_progress", "A request with this key is in progress"


class TransactionConflict(Conflict):
    code, title = "transaction_conflict", "Concurrent requests collided"

    def __init__(self, detail: str | None = None):
        super().__init__(
            detail or "Another request changed the same data at the same moment; retry",
            headers={"Retry-After": "1"},
        )


class InvalidInput(ZarizError):
    status, code, title = 422, "validation_error", "Invalid input"


class IdempotencyKeyReused(ZarizError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class RateLimited(ZarizError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many attempts; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class ServerBusy(ZarizError):
    status, code, title = 503, "server_busy", "Server busy"

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many sign-ins at once; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


# SQLSTATEs of a transaction that lost a race for rows (the database chose it as the victim), not
# of a database that is down: retrying can succeed at once, so they are never "unavailable".
LOCK_CONFLICTS = {
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "55P03": "lock_not_available",
}


def lock_conflict(exc: DBAPIError) -> str | None:
    """The name of the lock conflict exc reports, or None for any other database error."""
    return LOCK_CONFLICTS.get(str(getattr(exc.orig, "sqlstate", None)))


class ProofRequired(Conflict):
    code, title = "proof_required", "Proof required"


class ProofLimitReached(Conflict):
    code, title = "proof_limit_reached", "The order has as many proofs as it may"


class ProofNotAccepted(InvalidInput):
    code, title = "proof_not_accepted", "This proof is not collected"


class PayloadTooLarge(ZarizError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedImage(ZarizError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class InvalidImage(InvalidInput):
    code, title = "invalid_image", "Invalid image"


class ImageTooLarge(InvalidInput):
    code, title = "image_too_large", "Image too large"


class ExportTooLarge(InvalidInput):
    code, title = "export_too_large", "Export too large"


class TooManyExports(ZarizError):
    status, code, title = 429, "too_many_exports", "Too many exports at once"

    def __init__(self, detail: str):
        # An export in progress usually ends within a minute; a retry sooner is pointless.
        super().__init__(detail, headers={"Retry-After": "30"})


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
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
    body: dict[str, Any] = {
        "type": f"https://zariz.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_var.get(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc, msg and type: pydantic's `input` would echo passwords back.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ZarizError)
    async def _domain(_request: Request, exc: ZarizError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers)

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
        code = HTTP_CODES.get(exc.status_code, "error")
        title = code.replace("_", " ").capitalize()
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(exc.status_code, code, title, detail, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def _database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        conflict = lock_conflict(exc)
        if conflict is not None:
            # Reached only where no service retried the transaction (or its retries ran out).
            log.warning("lock conflict answered 409: %s", conflict)
            lost = TransactionConflict()
            return problem(lost.status, lost.code, lost.title, lost.detail, headers=lost.headers)
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


class WrongPassword(Forbidden):
    code, title = "wrong_password", "Current password is wrong"
