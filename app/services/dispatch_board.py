"""Couriers as dispatch sees them: capacity, current load and what they can still take."""

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.db.models import LOAD_STATUSES, Order, OrderStatus, Role, User, UserStatus
from app.schemas.orders import CourierLoad

ACTIVE_STATUSES = (OrderStatus.ASSIGNED, *LOAD_STATUSES)


def courier_loads(session: Session, *, available_only: bool) -> list[CourierLoad]:
    load = func.coalesce(
        func.sum(case((Order.status.in_(LOAD_STATUSES), Order.boxes_count), else_=0)), 0
    )
    active = func.count(Order.id)
    rows = session.execute(
        select(User.id, User.name, User.status, User.capacity_boxes, load, active, User.on_duty)
        .outerjoin(
            Order,
            (Order.courier_id == User.id)
            & Order.status.in_(ACTIVE_STATUSES)
            & Order.deleted_at.is_(None),
        )
        .where(
            User.role == Role.COURIER,
            User.status == UserStatus.ACTIVE,
            User.deleted_at.is_(None),
        )
        .group_by(User.id, User.name, User.status, User.capacity_boxes, User.on_duty)
    ).all()
    couriers = [
        CourierLoad(
            id=row[0],
            name=row[1],
            status=row[2],
            on_duty=bool(row[6]),
            capacity_boxes=row[3],
            load_boxes=int(row[4]),
            available_boxes=max(row[3] - int(row[4]), 0),
            active_orders=int(row[5]),
        )
        for row in rows
    ]
    if available_only:
        couriers = [c for c in couriers if c.on_duty and c.available_boxes > 0]
    # Off-duty couriers last: they take nothing, whatever room they have.
    return sorted(
        couriers,
        key=lambda c: (not c.on_duty, -c.available_boxes, c.active_orders, c.name, c.id),
    )
