"""Time windows of an order: the input type, the rules between the four ends, and `late`."""

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

from app.core.errors import InvalidInput
from app.schemas.common import BlankIsNone

WINDOW_FIELDS = ("pickup_after", "pickup_before", "deliver_after", "deliver_before")
# A window end a moment in the past on create is a clock difference, not a mistake.
PAST_SKEW = timedelta(seconds=60)
# Far enough for any delivery, and far from datetime's limits: no offset conversion overflows.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
FINAL = frozenset({"delivered", "failed", "canceled"})


def _in_range(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return value.astimezone(UTC)


# An aware datetime (a naive one is a 422: whose 10:00?); "" or null means none.
WindowEnd = Annotated[AwareDatetime | None, BlankIsNone, AfterValidator(_in_range)]


def check_windows(
    values: Mapping[str, datetime | None], *, changed: Collection[str], now: datetime
) -> None:
    """The rules a dispatcher expects of the four ends (given and stored, merged).

    A window's end is after its start; the pickup window opens before the delivery window
    closes and closes no later than it; an end newly set must not be in the past (a start may
    be: "from now on"). Each refusal names the field to fix.
    """
    pa, pb = values.get("pickup_after"), values.get("pickup_before")
    da, db = values.get("deliver_after"), values.get("deliver_before")
    for name, end in (("pickup_before", pb), ("deliver_before", db)):
        if name in changed and end is not None and end < now - PAST_SKEW:
            raise InvalidInput(f"{name} is in the past")
    if pa and pb and pb <= pa:
        raise InvalidInput("pickup_before must be after pickup_after")
    if da and db and db <= da:
        raise InvalidInput("deliver_before must be after deliver_after")
    if pa and db and pa >= db:
        raise InvalidInput("pickup_after must be before deliver_before")
    if pb and db and pb > db:
        raise InvalidInput("pickup_before must not be after deliver_before")


def is_late(status: str, deliver_before: datetime | None, *, now: datetime) -> bool:
    """Past its delivery deadline and not final: someone should act on it now."""
    return deliver_before is not None and status not in FINAL and now > deliver_before


def was_delivered_late(
    status: str, deliver_before: datetime | None, delivered_at: datetime | None
) -> bool:
    return (
        status == "delivered"
        and deliver_before is not None
        and delivered_at is not None
        and delivered_at > deliver_before
    )
