"""Logging in, refresh-token rotation with reuse detection, logout, sign-up and password change."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from app.core import ratelimit
from app.core.config import get_settings
from app.core.errors import (
    AccountInactive,
    DuplicateValue,
    InvalidInput,
    SignupDisabled,
    Unauthorized,
    WrongPassword,
)
from app.core.security import (
    create_access_token,
    decode_access_token,
    format_refresh_token,
    hash_password,
    hash_refresh_secret,
    looks_like_phone,
    new_refresh_secret,
    normalize_email,
    normalize_phone,
    parse_refresh_token,
    secrets_equal,
    verify_password,
)
from app.db.base import utcnow
from app.db.dml import changed_rows
from app.db.models import Device, Role, StoreMembership, User, UserSession, UserStatus
from app.services.principal_cache import principals
from app.services.users import clean_contacts, new_user, revoke_sessions, store_ids_of

log = logging.getLogger("zariz.auth")

INVALID_CREDENTIALS = "Invalid identifier or password"


@dataclass(frozen=True)
class Principal:
    """The caller of a request: the user as the database has them now, and their session."""

    user: User
    session_id: int
    family_id: int
    store_ids: tuple[int, ...]

    @property
    def role(self) -> Role:
        return self.user.role


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    user: User
    store_ids: list[int]


def find_user_by_identifier(session: Session, identifier: str) -> User | None:
    identifier = identifier.strip()
    if "@" in identifier:
        column, value = User.email, normalize_email(identifier)
    elif looks_like_phone(identifier):
        column, value = User.phone, normalize_phone(identifier)
    else:
        return None
    return session.scalar(select(User).where(column == value, User.deleted_at.is_(None)))


def _issue(
    session: Session, *, user: User, family_id: int | None, user_agent: str | None
) -> IssuedTokens:
    settings = get_settings()
    secret = new_refresh_secret()
    row = UserSession(
        user_id=user.id,
        token_hash=hash_refresh_secret(secret),
        family_id=family_id,
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl),
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    if row.family_id is None:
        row.family_id = row.id
    store_ids = store_ids_of(session, user)
    access = create_access_token(
        user_id=user.id,
        role=user.role,
        session_id=row.id,
        store_ids=store_ids,
        name=user.name,
        email=user.email,
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=format_refresh_token(row.id, secret),
        expires_in=settings.access_token_ttl,
        refresh_expires_in=settings.refresh_token_ttl,
        user=user,
        store_ids=store_ids,
    )


def _limit_key(identifier: str) -> str:
    # One account, one counter: every spelling of a phone or an email counts together.
    identifier = identifier.strip()
    if "@" in identifier:
        return normalize_email(identifier) or ""
    if looks_like_phone(identifier):
        return normalize_phone(identifier) or ""
    return identifier.lower()


def login(
    session: Session, *, identifier: str, password: str, client: str, user_agent: str | None
) -> IssuedTokens:
    limit_key = _limit_key(identifier)
    # Counted before the password is checked, so concurrent guesses cannot all pass one check.
    ratelimit.login_attempt(identifier=limit_key, client=client)
    user = find_user_by_identifier(session, identifier)
    # End the read before the slow hash: on SQLite every transaction holds the write lock.
    session.commit()
    if not verify_password(password, user.password_hash if user else None) or user is None:
        log.info("login failed")
        raise Unauthorized(INVALID_CREDENTIALS)
    if not user.is_active:
        raise AccountInactive(f"Account is {user.status}")
    _ensure_has_active_store(session, user)
    ratelimit.login_succeeded(identifier=limit_key, client=client)
    user.last_login_at = utcnow()
    session.add(user)
    tokens = _issue(session, user=user, family_id=None, user_agent=user_agent)
    session.commit()
    log.info("login", extra={"user_id": user.id})
    return tokens


def _ensure_has_active_store(
    session: Session, user: User, store_ids: Sequence[int] | None = None
) -> None:
    """A store account acts only for its stores: once every one of them is suspended or
    offboarded it can do nothing, and says so (403) rather than sign in to an empty scope."""
    if user.role != Role.STORE:
        return
    if store_ids is None:
        store_ids = store_ids_of(session, user)
    if store_ids:
        return
    has_store = session.scalar(
        select(StoreMembership.id).where(StoreMembership.user_id == user.id).limit(1)
    )
    if has_store is not None:
        raise AccountInactive("Every store of this account is suspended or offboarded")


def _revoke_family(session: Session, family_id: int) -> None:
    session.execute(
        update(UserSession)
        .where(UserSession.family_id == family_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _session_for_refresh_token(session: Session, refresh_token: str) -> UserSession:
    session_id, secret = parse_refresh_token(refresh_token)
    row = session.get(UserSession, session_id)
    if row is None or not secrets_equal(row.token_hash, hash_refresh_secret(secret)):
        raise Unauthorized("Invalid refresh token")
    return row


def _rotated_within_reuse_window(session: Session, row: UserSession) -> bool:
    """Whether the token was rotated so recently that presenting it again is a race, not theft.

    Two tabs refreshing at once, or a retry after a lost response, present one token twice;
    within REFRESH_REUSE_WINDOW_SECONDS of its first rotation (as Auth0's reuse interval and
    Okta's grace period) it rotates again instead of revoking the family.
    """
    window = get_settings().refresh_reuse_window_seconds
    if row.replaced_by_id is None or window <= 0:
        return False
    # The successor row was inserted by the first rotation: its created_at is when that was.
    rotated_at = session.scalar(
        select(UserSession.created_at).where(UserSession.id == row.replaced_by_id)
    )
    return rotated_at is not None and rotated_at > utcnow() - timedelta(seconds=window)


def refresh(
    session: Session, *, refresh_token: str, user_agent: str | None, _retried: bool = False
) -> IssuedTokens:
    row = _session_for_refresh_token(session, refresh_token)
    family_id = row.family_id or row.id
    if row.revoked_at is not None:
        raise Unauthorized("Session has ended")
    again = row.replaced_by_id is not None
    if again and not _rotated_within_reuse_window(session, row):
        _reuse_detected(session, family_id=family_id, user_id=row.user_id)
    if row.expires_at <= utcnow():
        raise Unauthorized("Refresh token expired")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Account is not active")
    _ensure_has_active_store(session, user)
    tokens = _issue(session, user=user, family_id=family_id, user_agent=user_agent)
    new_id, _ = parse_refresh_token(tokens.refresh_token)
    query = update(UserSession).where(UserSession.id == row.id, UserSession.revoked_at.is_(None))
    if again:
        # A second rotation of a token in its reuse window: a sibling in the same family. The
        # token keeps its first successor, so reusing it cannot stretch its window; the WHERE
        # repeats "not revoked" so a logout that landed meanwhile wins.
        query = query.values(replaced_by_id=UserSession.replaced_by_id)
    else:
        # WHERE repeats "not yet rotated" so two concurrent refreshes cannot both rotate it.
        query = query.where(UserSession.replaced_by_id.is_(None)).values(replaced_by_id=new_id)
    if changed_rows(session, query) != 1:
        session.rollback()
        if _retried:
            _reuse_detected(session, family_id=family_id, user_id=row.user_id)
        # A concurrent refresh of the same token rotated it first: look again, now that its
        # rotation is committed (within the window this one rotates it a second time).
        return refresh(session, refresh_token=refresh_token, user_agent=user_agent, _retried=True)
    session.commit()
    return tokens


def _reuse_detected(session: Session, *, family_id: int, user_id: int) -> None:
    _revoke_family(session, family_id)
    session.commit()
    log.warning("refresh token reuse; session family revoked", extra={"user_id": user_id})
    raise Unauthorized("Refresh token was already used; please log in again")


def logout(session: Session, *, refresh_token: str) -> None:
    row = _session_for_refresh_token(session, refresh_token)
    _end_family(session, family_id=row.family_id or row.id)


def logout_principal(session: Session, *, principal: Principal) -> None:
    """Ends the session an access token belongs to: the iOS app logs out with only its Bearer
    header, no refresh token in the body."""
    _end_family(session, family_id=principal.family_id)


def _end_family(session: Session, *, family_id: int) -> None:
    _revoke_family(session, family_id)
    # Devices registered under this session stop receiving the user's pushes.
    family_ids = select(UserSession.id).where(UserSession.family_id == family_id)
    session.execute(
        update(Device)
        .where(Device.session_id.in_(family_ids), Device.disabled_at.is_(None))
        .values(disabled_at=utcnow(), session_id=None)
    )
    session.commit()


@dataclass(frozen=True)
class Registration:
    """What a sign-up answers, the same whether or not its email or phone was already taken."""

    name: str
    email: str | None
    phone: str | None


def register(
    session: Session,
    *,
    name: str,
    email: str | None,
    phone: str | None,
    password: str,
    client: str,
) -> Registration:
    if not get_settings().self_signup:
        raise SignupDisabled("Self sign-up is disabled; ask an admin for an account")
    ratelimit.register_attempt(client=client)
    email, phone = clean_contacts(email, phone)
    if email is None and phone is None:
        raise InvalidInput("an email or a phone is required")
    # Hashed first, whatever happens next: a taken identifier costs the same time as a new one,
    # and no transaction is open through the slow hash.
    password_hash = hash_password(password)
    try:
        new_user(
            session,
            role=Role.COURIER,
            name=name,
            email=email,
            phone=phone,
            password=password,
            password_hash=password_hash,
            status=UserStatus.PENDING,
            capacity_boxes=get_settings().default_capacity_boxes,
        )
        session.commit()
    except DuplicateValue:
        # The existing account is left alone and the caller learns nothing about it: the answer
        # is the one a new sign-up gets (an admin approves pending couriers anyway).
        session.rollback()
        log.info("sign-up with an email or phone already in use")
    return Registration(name=name, email=email, phone=phone)


def change_password(
    session: Session,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
) -> None:
    ratelimit.password_attempt(user_id=principal.user.id)
    # Loaded here, not principal.user: that one is a snapshot other requests may share.
    user = session.get(User, principal.user.id)
    if user is None:
        raise Unauthorized("Account is not active")
    if not verify_password(current_password, user.password_hash):
        raise WrongPassword("Current password is wrong")
    user.password_hash = hash_password(new_password)
    session.add(user)
    revoke_sessions(session, user_id=user.id, except_family_id=principal.family_id)
    session.commit()


def _snapshot(user: User) -> User:
    """A detached copy of the loaded user, for the principal: shared by the requests that hit
    the cache, it must never be the object a session (this request's or a later one's) changes.
    """
    columns = inspect(User).column_attrs
    copy = User(**{attr.key: getattr(user, attr.key) for attr in columns})
    make_transient_to_detached(copy)
    return copy


def cached_principal(session: Session, token: str) -> Principal | None:
    """The caller of a token this process authenticated moments ago, reading nothing (or None).

    See app/services/principal_cache.py for why this stays as strict as reading the rows."""
    ttl = get_settings().principal_cache_seconds
    if not principals.usable(session, ttl):
        return None
    hit = principals.get(token, ttl)
    return hit if isinstance(hit, Principal) else None


# How long a request waits for another's read of the same token before reading for itself.
FLIGHT_WAIT_SECONDS = 5.0


def authenticate(session: Session, token: str, *, allow_expired: bool = False) -> Principal:
    """Checks an access token against the database: valid session, active user, current role.

    allow_expired (the live stream only): an expired access token is taken as long as its
    session is valid, the session's refresh lifetime included, so a stream lives as long as
    its session, and a client reconnects with the token it has. (Never from the cache.)
    """
    ttl = get_settings().principal_cache_seconds
    if allow_expired or not principals.usable(session, ttl):
        return _read_principal(session, token, allow_expired=allow_expired, store=False)
    hit = principals.get(token, ttl)
    if isinstance(hit, Principal):
        return hit
    in_flight = principals.lead(token)
    if in_flight is None:
        try:
            return _read_principal(session, token, allow_expired=False, store=True)
        finally:
            principals.land(token)
    # Another request reads this token now (a courier's second tap). Its principal answers this
    # one only through the cache, i.e. only if no change committed since that read began, nor
    # since it was stored: the rule every cached read obeys.
    in_flight.wait(FLIGHT_WAIT_SECONDS)  # bounded: a stuck read must not hold the others
    hit = principals.get(token, ttl)
    if isinstance(hit, Principal):
        return hit
    # That read failed or raced a change: this request reads for itself (without leading, so a
    # token that keeps failing costs each request one read, as before, and never a queue).
    return _read_principal(session, token, allow_expired=False, store=True)


def _read_principal(session: Session, token: str, *, allow_expired: bool, store: bool) -> Principal:
    """The token's principal read from the database; cached if `store`, unless a change
    committed during the read."""
    # Taken before the read: a change committed during it empties the cache, and this read,
    # which may predate the change, is then not stored.
    epoch = principals.epoch()
    claims = decode_access_token(token, allow_expired=allow_expired)
    # The user as an entity, the session as the columns needed: hydrating a second ORM
    # object on every request cost more than the query.
    found = session.execute(
        select(User, UserSession.family_id, UserSession.revoked_at, UserSession.expires_at)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id == claims.session_id, User.id == claims.user_id)
    ).first()
    if found is None:
        raise Unauthorized("Session not found")
    user, family_id, revoked_at, session_expires_at = found
    if revoked_at is not None:
        raise Unauthorized("Session has ended")
    if allow_expired and session_expires_at <= utcnow():
        raise Unauthorized("Session has expired")
    if not user.is_active:
        raise Unauthorized("Account is not active")
    store_ids = tuple(store_ids_of(session, user))
    _ensure_has_active_store(session, user, store_ids)
    # End the read transaction here: the request may do slow work next, and on SQLite an open
    # transaction holds the write lock (expire_on_commit is off, so the user stays loaded).
    session.commit()
    principal = Principal(
        user=_snapshot(user),
        session_id=claims.session_id,
        family_id=family_id or claims.session_id,
        store_ids=store_ids,
    )
    if store:
        principals.put(
            token, principal, token_expires_at=claims.expires_at.timestamp(), epoch=epoch
        )
    return principal
