"""Housekeeping run by the push worker: hourly, old sessions, idempotency keys, push jobs and
proof objects no row names; every minute, accepted orders not picked up in time."""

import logging
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.base import utcnow
from app.db.dml import changed_rows
from app.db.models import Device, PushJob, PushStatus, UserSession
from app.services import idempotency
from app.services.order_lifecycle import release_stale_orders
from app.services.proof_storage import storage_for
from app.services.proofs import delete_orphans

log = logging.getLogger("zariz.maintenance")

# Expired sessions are kept a while for audit (who was signed in when), then removed.
SESSION_RETENTION = timedelta(days=30)
# Finished push jobs are kept a week for support questions ("did my phone get it?"): every
# pool change fans out to every courier's device, so this table grows fastest of all.
PUSH_JOB_RETENTION = timedelta(days=7)
FINISHED_PUSH = (PushStatus.SENT, PushStatus.SKIPPED, PushStatus.DEAD)


def purge_expired_sessions(session: Session) -> int:
    cutoff = utcnow() - SESSION_RETENTION
    expired = select(UserSession.id).where(UserSession.expires_at < cutoff)
    session.execute(update(Device).where(Device.session_id.in_(expired)).values(session_id=None))
    # A rotated token's replacement expires later than it does, so every row another expired
    # row points at is expired too and goes in the same statement.
    purged = changed_rows(session, delete(UserSession).where(UserSession.expires_at < cutoff))
    session.commit()
    return purged


def purge_finished_push_jobs(session: Session) -> int:
    purged = changed_rows(
        session,
        delete(PushJob).where(
            PushJob.status.in_(FINISHED_PUSH), PushJob.updated_at < utcnow() - PUSH_JOB_RETENTION
        ),
    )
    session.commit()
    return purged


def purge_orphan_proofs(session: Session) -> int:
    settings = get_settings()
    try:
        return delete_orphans(
            session,
            storage=storage_for(settings),
            grace=timedelta(seconds=settings.proof_orphan_grace_seconds),
        )
    except Exception:
        # Object storage being down must not stop the database housekeeping; next hour retries.
        session.rollback()
        log.warning("proof orphan sweep failed", exc_info=True)
        return 0


def run_housekeeping(session: Session) -> None:
    sessions = purge_expired_sessions(session)
    keys = idempotency.purge_expired(session)
    jobs = purge_finished_push_jobs(session)
    orphans = purge_orphan_proofs(session)
    if orphans:
        log.info("housekeeping removed %d orphaned proof objects", orphans)
    if sessions or keys or jobs:
        log.info(
            "housekeeping removed %d sessions, %d idempotency keys, %d push jobs",
            sessions,
            keys,
            jobs,
        )


def release_stale_claims(session: Session, *, after_minutes: int) -> int:
    """Accepted orders not picked up within after_minutes (AUTO_RELEASE_AFTER_MINUTES) go back."""
    released = release_stale_orders(session, after_minutes=after_minutes)
    if released:
        log.info(
            "released %d accepted orders not picked up in time",
            len(released),
            extra={"order_ids": released},
        )
    return len(released)
