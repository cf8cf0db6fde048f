"""A day at a glance for the console: counts of what ended and what is open, orders per hour."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.base import utcnow
from app.db.models import FINAL_STATUSES, Order, OrderStatus
from app.services.auth import Principal
from app.services.orders import scope


@dataclass(frozen=True)
class DaySummary:
    day: date
    created: int
    delivered: int
    failed: int
    canceled: int
    open_now: int
    late_now: int  # open orders past their deliver_before, now
    delivered_late: int  # of the day's deliveries, those after their deliver_before
    per_hour: list[int]  # orders created in each hour of the day, local time, 24 entries


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), zone)
    return start, datetime.combine(day + timedelta(days=1), time(), zone)


def day_summary(session: Session, *, principal: Principal, day: date, zone: ZoneInfo) -> DaySummary:
    """The caller's orders only (the same scope as every list)."""
    start, end = day_bounds(day, zone)
    visible = scope(principal)

    def count_between(column: InstrumentedAttribute[datetime | None]) -> int:
        query = (
            select(func.count()).select_from(Order).where(visible, column >= start, column < end)
        )
        return int(session.scalar(query) or 0)

    open_now = session.scalar(
        select(func.count()).select_from(Order).where(visible, Order.status.not_in(FINAL_STATUSES))
    )
    # The same rule as `late` in the read models (app/schemas/windows.py), as SQL.
    late_now = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(visible, Order.status.not_in(FINAL_STATUSES), Order.deliver_before < utcnow())
    )
    delivered_late = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            visible,
            Order.status == OrderStatus.DELIVERED,
            Order.delivered_at >= start,
            Order.delivered_at < end,
            Order.delivered_at > Order.deliver_before,
        )
    )
    created_at = session.scalars(
        select(Order.created_at).where(visible, Order.created_at >= start, Order.created_at < end)
    ).all()
    per_hour = [0] * 24
    for moment in created_at:
        per_hour[moment.astimezone(zone).hour] += 1
    summary = DaySummary(
        day=day,
        created=len(created_at),
        delivered=count_between(Order.delivered_at),
        failed=count_between(Order.failed_at),
        canceled=count_between(Order.canceled_at),
        open_now=int(open_now or 0),
        late_now=int(late_now or 0),
        delivered_late=int(delivered_late or 0),
        per_hour=per_hour,
    )
    session.commit()  # end the read
    return summary
