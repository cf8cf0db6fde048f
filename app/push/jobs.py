"""The worker's side of the outbox: claiming due push jobs under a lease and recording outcomes."""

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.metrics import PUSH_DEAD, PUSH_DISABLED_DEVICES, PUSH_FAILED, PUSH_SENT
from app.db.base import utcnow
from app.db.dml import changed_rows
from app.db.models import Device, PushJob, PushStatus
from app.push.apns import ApnsResult, Outcome
from app.services.devices import skip_waiting_jobs

log = logging.getLogger("zariz.push")

WAITING = (PushStatus.PENDING, PushStatus.FAILED)
_jitter = random.Random()  # noqa: S311 (spreading retries, not security)


@dataclass(frozen=True)
class Claimed:
    job_id: int
    event_id: int
    device_id: int
    # The attempt number this claim made; it fences the outcome against a later claim.
    attempts: int
    payload: dict[str, Any]
    token: str
    environment: str
    claimed_at: datetime


@dataclass(frozen=True)
class Done:
    job: Claimed
    result: ApnsResult


def short(token: str) -> str:
    # Enough to tell devices apart in a log, never the whole token.
    return f"{token[:6]}…"


def claim_due(session: Session, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Takes up to `limit` due jobs for this worker until the lease ends, in one short transaction.

    Claiming bumps attempts and moves next_attempt_at past the lease, so the rows are invisible to
    other workers while in flight and come back by themselves if this worker dies.
    """
    now = utcnow()
    ids = session.scalars(
        select(PushJob.id)
        .where(PushJob.status.in_(WAITING), PushJob.next_attempt_at <= now)
        .order_by(PushJob.next_attempt_at, PushJob.id)
        .limit(limit)
        # SKIP LOCKED: concurrent workers take different rows instead of queueing on the same
        # ones (Postgres). SQLite has no row locks; its BEGIN IMMEDIATE serialises claims.
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        session.commit()
        return []
    rows = session.execute(
        update(PushJob)
        .where(PushJob.id.in_(ids))
        .values(
            attempts=PushJob.attempts + 1,
            next_attempt_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(
            PushJob.id, PushJob.event_id, PushJob.device_id, PushJob.attempts, PushJob.payload
        )
        .execution_options(synchronize_session=False)
    ).all()
    devices = {
        d.id: d
        for d in session.execute(
            select(Device.id, Device.token, Device.environment, Device.disabled_at).where(
                Device.id.in_({r.device_id for r in rows})
            )
        )
    }
    # A device disabled since the job was written (logout, 410, unregistered) gets nothing.
    disabled = [r.id for r in rows if devices[r.device_id].disabled_at is not None]
    if disabled:
        session.execute(
            update(PushJob)
            .where(PushJob.id.in_(disabled))
            .values(status=PushStatus.SKIPPED, last_error="device disabled", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return [
        Claimed(
            job_id=r.id,
            event_id=r.event_id,
            device_id=r.device_id,
            attempts=r.attempts,
            payload=r.payload,
            token=devices[r.device_id].token,
            environment=devices[r.device_id].environment,
            claimed_at=now,
        )
        for r in sorted(rows, key=lambda r: r.id)
        if r.id not in disabled
    ]


def retry_delay(attempts: int, settings: Settings) -> float:
    # Full jitter: a burst of 429/503s retries spread over the window, not in lockstep.
    ceiling = min(settings.push_backoff_max, settings.push_backoff_base * 2**attempts)
    return _jitter.uniform(0, ceiling)


def _update_job(session: Session, job: Claimed, **values: Any) -> bool:
    # Fenced by the attempt number: if our lease ran out and another worker claimed the job,
    # its claim bumped attempts and this stale outcome must not overwrite its state.
    return bool(
        changed_rows(
            session,
            update(PushJob)
            .where(PushJob.id == job.job_id, PushJob.attempts == job.attempts)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False),
        )
    )


def _disable_device(session: Session, job: Claimed, error: str) -> bool:
    disabled = changed_rows(
        session,
        update(Device)
        .where(
            Device.id == job.device_id,
            Device.disabled_at.is_(None),
            # Re-registered after we sent: the app has a fresh registration, keep it.
            or_(Device.last_seen_at.is_(None), Device.last_seen_at < job.claimed_at),
        )
        .values(disabled_at=utcnow(), session_id=None)
        .execution_options(synchronize_session=False),
    )
    if not disabled:
        return False
    skip_waiting_jobs(session, device_ids=[job.device_id], reason=f"device gone: {error}")
    return True


Noted = tuple[Counter, str]


def _apply(session: Session, item: Done, settings: Settings, now: datetime) -> list[Noted] | None:
    """Writes one outcome; None when a later claim owns the job now."""
    job, result = item.job, item.result
    error = result.error
    if result.outcome in (Outcome.GONE, Outcome.REJECTED):
        if not _update_job(session, job, status=PushStatus.DEAD, last_error=error):
            return None
        noted: list[Noted] = [(PUSH_DEAD, "push dead")]
        if result.outcome is Outcome.GONE and _disable_device(session, job, error):
            noted.append((PUSH_DISABLED_DEVICES, "device disabled"))
        return noted
    if job.attempts >= settings.push_max_attempts:
        if not _update_job(session, job, status=PushStatus.DEAD, last_error=error):
            return None
        return [(PUSH_DEAD, "push dead after the last attempt")]
    delay = retry_delay(job.attempts, settings)
    if not _update_job(
        session,
        job,
        status=PushStatus.FAILED,
        last_error=error,
        next_attempt_at=now + timedelta(seconds=delay),
    ):
        return None
    return [(PUSH_FAILED, f"push failed, retry in {delay:.1f} s")]


def _mark_sent(session: Session, sent: Sequence[Done], now: datetime) -> set[int]:
    """One UPDATE for every sent job (the common case); the ids whose fence held."""
    if not sent:
        return set()
    fences = [(item.job.job_id, item.job.attempts) for item in sent]
    return set(
        session.scalars(
            update(PushJob)
            .where(tuple_(PushJob.id, PushJob.attempts).in_(fences))
            .values(status=PushStatus.SENT, sent_at=now, last_error=None, updated_at=now)
            .returning(PushJob.id)
            .execution_options(synchronize_session=False)
        )
    )


def record_outcomes(session: Session, done: Sequence[Done], settings: Settings) -> None:
    """Writes every outcome in one transaction; metrics and logs only once it committed."""
    now = utcnow()
    sent = [item for item in done if item.result.outcome is Outcome.SENT]
    marked = _mark_sent(session, sent, now)
    applied: list[tuple[Done, list[Noted] | None]] = [
        (item, [(PUSH_SENT, "push sent")] if item.job.job_id in marked else None) for item in sent
    ]
    applied += [
        (item, _apply(session, item, settings, now))
        for item in done
        if item.result.outcome is not Outcome.SENT
    ]
    session.commit()
    for item, noted in applied:
        if noted is None:
            log.warning("push outcome dropped: the job was claimed again", extra=_extra(item.job))
            continue
        for counter, message in noted:
            counter.inc()
            level = logging.INFO if counter is PUSH_SENT else logging.WARNING
            log.log(level, _describe(message, item), extra=_extra(item.job))


def skip_jobs(session: Session, jobs: Sequence[Claimed], reason: str) -> None:
    for job in jobs:
        _update_job(session, job, status=PushStatus.SKIPPED, last_error=reason)
    session.commit()
    for job in jobs:
        log.info(f"push skipped: {reason}", extra=_extra(job))


def queue_stats(session: Session) -> tuple[int, datetime | None]:
    """Jobs still to be sent (in flight included) and when the earliest of them is due."""
    depth, next_due = session.execute(
        select(func.count(), func.min(PushJob.next_attempt_at)).where(PushJob.status.in_(WAITING))
    ).one()
    session.commit()
    return int(depth), next_due


def _extra(job: Claimed) -> dict[str, int]:
    return {"job_id": job.job_id, "event_id": job.event_id}


def _describe(message: str, item: Done) -> str:
    job = item.job
    detail = "" if item.result.outcome is Outcome.SENT else f": {item.result.error}"
    return f"{message}{detail} (device {job.device_id} {short(job.token)}, attempt {job.attempts})"
