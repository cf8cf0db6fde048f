"""The reason codes a failed delivery gives, from the FAILURE_REASONS setting."""

from dataclasses import dataclass

from app.core.config import Settings
from app.core.errors import InvalidInput
from app.schemas.proofs import FailureReason

OTHER = "other"
LABELS = {
    "recipient_absent": "Recipient absent",
    "wrong_address": "Wrong address",
    "refused": "Refused by the recipient",
    "damaged": "Damaged",
    "unsafe_location": "Unsafe location",
    OTHER: "Other",
}


def label(code: str) -> str:
    return LABELS.get(code, code.replace("_", " ").capitalize())


def failure_reasons(settings: Settings) -> list[FailureReason]:
    return [
        FailureReason(code=code, label=label(code), note_required=code == OTHER)
        for code in settings.failure_reasons
    ]


@dataclass(frozen=True)
class Failure:
    code: str | None
    text: str  # failure_reason on the order: the courier's note, else the reason's label


def resolve_failure(
    settings: Settings, *, reason_code: str | None, reason: str | None, note: str | None
) -> Failure:
    """The failure a `failed` transition records; 422 for an unknown code or a bare `other`.

    `reason` is the free text older clients send: a configured code given there counts as the
    code, anything else as `other` with that text as its note.
    """
    codes = settings.failure_reasons
    if reason_code is None and reason:
        if reason.strip().lower() in codes:
            reason_code, reason = reason.strip().lower(), None
        else:
            return Failure(OTHER if OTHER in codes else None, reason)
    if reason_code is None:
        raise InvalidInput("reason_code is required when an order fails")
    if reason_code not in codes:
        raise InvalidInput(f"reason_code must be one of: {', '.join(codes)}")
    text = note or reason
    if reason_code == OTHER and not text:
        raise InvalidInput("reason_code other needs a note")
    return Failure(reason_code, text or label(reason_code))
