"""Housekeeping run now and then by the push worker: expired sessions and idempotency keys."""

import logging
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Device, UserSession
from app.services import idempotency

log = logging.getLogger("zariz.maintenance")

# Expired sessions are kept a while for audit (who was signed in when), then removed.
SESSION_RETENTION = timedelta(days=30)


def purge_expired_sessions(session: Session) -> int:
    cutoff = utcnow() - SESSION_RETENTION
    expired = select(UserSession.id).where(UserSession.expires_at < cutoff)
    session.execute(update(Device).where(Device.session_id.in_(expired)).values(session_id=None))
    # A rotated token's replacement expires later than it does, so every row another expired
    # row points at is expired too and goes in the same statement.
    result = session.execute(delete(UserSession).where(UserSession.expires_at < cutoff))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def run_housekeeping(session: Session) -> None:
    sessions = purge_expired_sessions(session)
    keys = idempotency.purge_expired(session)
    if sessions or keys:
        log.info("housekeeping removed %d sessions and %d idempotency keys", sessions, keys)
