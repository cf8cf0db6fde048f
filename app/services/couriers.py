"""Courier accounts as admins manage them: create, edit, status, duty, credentials, approval."""

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import InvalidInput, NotFound
from app.db.models import Order, OrderStatus, Role, User, UserStatus
from app.schemas.admin import CourierCreate, CourierUpdate
from app.services.users import apply_credentials, new_user, revoke_sessions

log = logging.getLogger("zariz.couriers")

# Orders a courier holds: assigned to them, accepted, or on the way.
HELD_STATUSES = (OrderStatus.ASSIGNED, OrderStatus.ACCEPTED, OrderStatus.PICKED_UP)


def get_courier(session: Session, *, courier_id: int) -> User:
    user = session.get(User, courier_id)
    if user is None or user.role != Role.COURIER or user.deleted_at is not None:
        raise NotFound("Courier not found")
    return user


def list_couriers(session: Session, *, status: UserStatus | None = None) -> list[User]:
    query = select(User).where(User.role == Role.COURIER, User.deleted_at.is_(None))
    if status is not None:
        query = query.where(User.status == status)
    return list(session.scalars(query.order_by(User.name, User.id)))


def _check_admin_status(status: UserStatus) -> None:
    if status == UserStatus.PENDING:
        raise InvalidInput("status must be active, suspended or offboarded")


def create_courier(session: Session, *, data: CourierCreate) -> User:
    _check_admin_status(data.status)
    user = new_user(
        session,
        role=Role.COURIER,
        name=data.name,
        email=data.email,
        phone=data.phone,
        password=data.password,
        status=data.status,
        capacity_boxes=data.capacity_boxes or get_settings().default_capacity_boxes,
    )
    user.on_duty = data.on_duty
    session.commit()
    return user


def update_courier(session: Session, *, courier_id: int, data: CourierUpdate) -> User:
    """Applies every field given; blank email, phone or password leave the stored value."""
    if data.status is not None:
        _check_admin_status(data.status)
    user = get_courier(session, courier_id=courier_id)
    if data.name is not None:
        user.name = data.name
    if data.capacity_boxes is not None:
        user.capacity_boxes = data.capacity_boxes
    apply_credentials(
        session, user=user, email=data.email, phone=data.phone, password=data.password
    )
    if data.status is not None:
        apply_user_status(session, user=user, status=data.status)
    if data.on_duty is not None:
        apply_duty(user=user, on_duty=data.on_duty, by="admin")
    session.commit()
    return user


@dataclass(frozen=True)
class DutyChange:
    courier: User
    active_orders: int


def held_orders(session: Session, *, courier_id: int) -> int:
    count = session.scalar(
        select(func.count(Order.id)).where(
            Order.courier_id == courier_id,
            Order.status.in_(HELD_STATUSES),
            Order.deleted_at.is_(None),
        )
    )
    return int(count or 0)


def apply_duty(*, user: User, on_duty: bool, by: str) -> None:
    if user.on_duty == on_duty:
        return
    user.on_duty = on_duty
    log.info(
        "courier duty changed",
        extra={"courier_id": user.id, "on_duty": on_duty, "changed_by": by},
    )


def set_duty(session: Session, *, courier_id: int, on_duty: bool, by: str) -> DutyChange:
    """On or off duty; going off with orders in hand is allowed (they stay the courier's)."""
    user = get_courier(session, courier_id=courier_id)
    apply_duty(user=user, on_duty=on_duty, by=by)
    active = held_orders(session, courier_id=user.id)
    session.commit()
    return DutyChange(courier=user, active_orders=active)


def apply_user_status(session: Session, *, user: User, status: UserStatus) -> None:
    """The status change and its side effects, in the caller's transaction."""
    if user.status == status:
        return
    user.status = status
    if status != UserStatus.ACTIVE:
        # Leaving active ends every session (and so every open stream, which re-checks its
        # session); the access-token check locks them out at once too.
        revoke_sessions(session, user_id=user.id)


def set_user_status(session: Session, *, user: User, status: UserStatus) -> User:
    apply_user_status(session, user=user, status=status)
    session.commit()
    return user


def set_courier_status(session: Session, *, courier_id: int, status: UserStatus) -> User:
    _check_admin_status(status)
    return set_user_status(session, user=get_courier(session, courier_id=courier_id), status=status)


def set_courier_credentials(
    session: Session,
    *,
    courier_id: int,
    email: str | None,
    phone: str | None,
    password: str | None,
) -> User:
    user = get_courier(session, courier_id=courier_id)
    apply_credentials(session, user=user, email=email, phone=phone, password=password)
    session.commit()
    return user


def approve_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("User not found")
    if user.status not in (UserStatus.PENDING, UserStatus.ACTIVE):
        raise InvalidInput(f"A {user.status} account cannot be approved; change its status")
    user.status = UserStatus.ACTIVE
    session.commit()
    return user
