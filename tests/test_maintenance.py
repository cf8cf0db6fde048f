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
        IdempotencyKey(user_id=user.id, key="k", method="POST", path="/v1/orders", request_hash="h")
    )
    db.add(
        IdempotencyKey(
            user_id=user.id,
            key="old",
            method="POST",
            path="/v1/orders",
            request_hash="h",
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
