"""The device registry: APNs tokens registered by signed-in users, and turning them off."""

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import NotFound
from app.db.base import utcnow
from app.db.dml import changed_rows
from app.db.errors import violated_constraint
from app.db.models import ApnsEnvironment, Device, Platform, PushJob, PushStatus, User
from app.services.auth import Principal

UNIQUE_DEVICE = "devices_token_key"


def _by_token(session: Session, token: str) -> Device | None:
    return session.scalar(select(Device).where(Device.token == token).with_for_update())


def skip_waiting_jobs(session: Session, *, device_ids: Sequence[int], reason: str) -> int:
    """Marks jobs not yet sent to these devices skipped; the caller commits."""
    if not device_ids:
        return 0
    return changed_rows(
        session,
        update(PushJob)
        .where(
            PushJob.device_id.in_(device_ids),
            PushJob.status.in_((PushStatus.PENDING, PushStatus.FAILED)),
        )
        .values(status=PushStatus.SKIPPED, last_error=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False),
    )


def register_device(
    session: Session,
    *,
    principal: Principal,
    platform: Platform,
    token: str,
    environment: ApnsEnvironment,
    app_version: str | None,
) -> tuple[Device, bool]:
    """Upserts by token; a known token moves to the caller's session and is enabled again."""
    now = utcnow()
    # One registration per user at a time, so two at once cannot both find room under the caps.
    session.execute(select(User.id).where(User.id == principal.user.id).with_for_update())
    device = _by_token(session, token)
    if device is None:
        device = Device(
            user_id=principal.user.id,
            session_id=principal.session_id,
            platform=platform,
            token=token,
            environment=environment,
            app_version=app_version,
            last_seen_at=now,
        )
        try:
            with session.begin_nested():
                session.add(device)
                session.flush()
        except IntegrityError as exc:
            # Two registrations of one new token raced and the other insert won: update it.
            if violated_constraint(exc) != UNIQUE_DEVICE:
                raise
            device = _by_token(session, token)
            if device is None:
                raise
        else:
            _enforce_caps(session, principal=principal, keep=device)
            session.commit()
            return device, True
    if device.user_id != principal.user.id:
        # The phone changed hands (or accounts): what was queued for the previous user's
        # events must not reach the new one.
        skip_waiting_jobs(session, device_ids=[device.id], reason="device moved to another user")
    device.user_id = principal.user.id
    device.session_id = principal.session_id
    device.platform = platform
    device.environment = environment
    device.app_version = app_version
    device.last_seen_at = now
    device.disabled_at = None
    session.flush()
    _enforce_caps(session, principal=principal, keep=device)
    session.commit()
    return device, False


def _enforce_caps(session: Session, *, principal: Principal, keep: Device) -> None:
    """Disables the least recently seen of the caller's enabled devices beyond the caps.

    Unbounded, one user's thousands of tokens made every event of theirs write as many push
    jobs inside the transaction that recorded it. The device just registered is kept.
    """
    settings = get_settings()
    excess: list[int] = []
    for condition, cap in (
        (Device.session_id == principal.session_id, settings.devices_max_per_session),
        (Device.user_id == principal.user.id, settings.devices_max_per_user),
    ):
        enabled = session.scalars(
            select(Device.id)
            .where(condition, Device.disabled_at.is_(None), Device.id.not_in(excess))
            .order_by(
                (Device.id == keep.id).desc(),
                Device.last_seen_at.desc().nulls_last(),
                Device.id.desc(),
            )
        ).all()
        excess.extend(enabled[cap:])
    if not excess:
        return
    session.execute(
        update(Device)
        .where(Device.id.in_(excess))
        .values(disabled_at=utcnow(), session_id=None)
        .execution_options(synchronize_session=False)
    )
    skip_waiting_jobs(session, device_ids=excess, reason="device limit reached")


def list_devices(session: Session, *, principal: Principal) -> list[Device]:
    return list(
        session.scalars(
            select(Device)
            .where(Device.user_id == principal.user.id, Device.disabled_at.is_(None))
            .order_by(Device.id)
        )
    )


def unregister_device(session: Session, *, principal: Principal, token: str) -> None:
    """Turns the caller's device off; the row stays so a later register re-enables it."""
    device = session.scalar(
        select(Device).where(Device.token == token.lower(), Device.user_id == principal.user.id)
    )
    # Another user's token is 404 like an unknown one: tokens of others are not disclosed.
    if device is None:
        raise NotFound("No such device")
    if device.disabled_at is None:
        device.disabled_at = utcnow()
        device.session_id = None
        skip_waiting_jobs(session, device_ids=[device.id], reason="device unregistered")
    session.commit()
