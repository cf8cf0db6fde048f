"""Housekeeping: expired sessions and idempotency keys go; live ones and devices stay."""

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Device, IdempotencyKey, UserSession
from app.services.maintenance import run_housekeeping
from tests.builders import login_tokens, make_user


def test_housekeeping_removes_long_expired_sessions_and_old_keys(db: Session) -> None:
    user = make_user(db)
    login_tokens(db, user)
    _, old_refresh = login_tokens(db, user)
    old_id = int(old_refresh.split(".")[0])
    db.add(Device(user_id=user.id, session_id=old_id, token="ab" * 32))
    db.add(
        IdempotencyKey(
            user_id=user.id,
            key="k",
            method="POST",
            path="/v1/orders",
            request_hash="h",
            status_code=201,
        )
    )
    db.add(
        IdempotencyKey(
            user_id=user.id,
            key="old",
            method="POST",
            path="/v1/orders",
            request_hash="h",
            status_code=201,
            created_at=utcnow() - timedelta(hours=30),
        )
    )
    db.commit()
    db.execute(
        update(UserSession)
        .where(UserSession.id == old_id)
        .values(expires_at=utcnow() - timedelta(days=40))
    )
    db.commit()
    run_housekeeping(db)
    db.expire_all()
    assert db.query(UserSession).count() == 1
    device = db.query(Device).one()
    assert device.session_id is None
    assert [k.key for k in db.query(IdempotencyKey).all()] == ["k"]


def test_housekeeping_removes_finished_push_jobs_after_a_week(db: Session) -> None:
    from app.db.models import EventType, OrderEvent, PushJob
    from tests.builders import make_order, make_store

    user = make_user(db)
    order = make_order(db, store=make_store(db))
    event = OrderEvent(order_id=order.id, type=EventType.CREATED, store_id=order.store_id)
    device = Device(user_id=user.id, token="cd" * 32)
    db.add_all([event, device])
    db.flush()
    old = utcnow() - timedelta(days=8)
    for status, updated in (("sent", old), ("dead", old), ("pending", old), ("sent", utcnow())):
        db.add(
            PushJob(
                event_id=event.id,
                device_id=device.id,
                payload={},
                status=status,
                next_attempt_at=old,
                updated_at=updated,
            )
        )
    db.commit()
    run_housekeeping(db)
    db.expire_all()
    # Old finished jobs go; a pending one (however old) and a recent one stay.
    assert sorted(j.status for j in db.query(PushJob).all()) == ["pending", "sent"]
