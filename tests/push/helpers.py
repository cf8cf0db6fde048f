"""Building push scenarios in a live (really committed) database, and waiting for a worker."""

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utcnow
from app.db.models import Device, EventType, OrderEvent, PushJob, Role, Store, User, UserStatus
from app.services.auth import Principal
from app.services.events import record_event
from tests.builders import make_order, make_store, make_store_user, make_user

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(0.02)


def token_of(n: int) -> str:
    return f"{n:064x}"


def add_device(session: Session, user: User, token: str, environment: str = "production") -> Device:
    device = Device(user_id=user.id, token=token, environment=environment, last_seen_at=utcnow())
    session.add(device)
    session.commit()
    return device


def courier_with_device(
    session: Session, token: str, *, status: UserStatus = UserStatus.ACTIVE
) -> tuple[User, Device]:
    user = make_user(session, role=Role.COURIER, status=status)
    return user, add_device(session, user, token)


def principal(session: Session, user: User) -> Principal:
    from app.services.users import store_ids_of

    return Principal(
        user=user, session_id=0, family_id=0, store_ids=tuple(store_ids_of(session, user))
    )


def order_created(session: Session, *, store: Store, actor: User | None) -> OrderEvent:
    """An order entering the open pool, as POST /v1/orders records it."""
    order = make_order(session, store=store, created_by=actor)
    event = record_event(
        session,
        order=order,
        type=EventType.CREATED,
        actor=principal(session, actor) if actor else None,
        before=None,
    )
    session.commit()
    return event


def store_with_user(session: Session) -> tuple[Store, User]:
    store = make_store(session)
    return store, make_store_user(session, store=store)


def jobs(live: sessionmaker[Session], **where: object) -> list[PushJob]:
    with live() as session:
        query = select(PushJob).order_by(PushJob.id)
        for name, value in where.items():
            query = query.where(getattr(PushJob, name) == value)
        return list(session.scalars(query))


def statuses(live: sessionmaker[Session]) -> list[str]:
    return [job.status for job in jobs(live)]
