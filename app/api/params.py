"""Typed path and query parameters shared by the routes, and the date bounds of list filters."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Path, Query

from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.schemas.common import MAX_ID, Text

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
PathText = Annotated[Text, Path()]

# Far enough apart for any real filter, and far enough inside datetime's year 1..9999 that adding
# a day or converting an offset to UTC cannot overflow in Python or on either database.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def date_bound(value: str | None, name: str, *, end: bool) -> datetime | None:
    """A date or a datetime; a `to` date means the whole of that day (exclusive next midnight).

    Dates and datetimes without an offset are in the business time zone (BUSINESS_TIMEZONE):
    "2026-03-27" is that day from its local midnight to the next, 23 or 25 hours on a DST day.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    zone = get_settings().business_zone
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            moment = datetime.combine(day, time.min, tzinfo=zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        # Comparing before converting: astimezone itself overflows at year 1 or 9999.
        in_range = EARLIEST <= moment <= LATEST
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD) or an ISO-8601 datetime") from exc
    if not in_range:
        raise InvalidInput(f"{name} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return moment.astimezone(UTC)
