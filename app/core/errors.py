"""Domain errors that carry their HTTP status and code; app/api/errors.py renders them."""

from typing import ClassVar

from sqlalchemy.exc import DBAPIError


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


class CourierOffDuty(Conflict):
    code, title = "courier_off_duty", "Courier is off duty"


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


class WrongPassword(Forbidden):
    code, title = "wrong_password", "Current password is wrong"
