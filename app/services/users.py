"""Accounts of every role: creation, unique contacts, memberships, session revocation."""

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import DuplicateValue, InvalidInput
from app.core.security import hash_password, normalize_email, normalize_phone
from app.db.base import utcnow
from app.db.errors import violated_constraint
from app.db.models import (
    Role,
    Store,
    StoreMembership,
    StoreStatus,
    User,
    UserSession,
    UserStatus,
)

CONTACT_CONSTRAINTS = {
    "users_email_live_key": "A user with this email already exists",
    "users_phone_live_key": "A user with this phone already exists",
}


def clean_contacts(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    email, phone = normalize_email(email), normalize_phone(phone)
    if email is not None and "@" not in email:
        raise InvalidInput("email is not a valid address")
    # ASCII digits only: str.isdigit() takes "²", which is no phone (the CLI reaches this too).
    digits = phone.lstrip("+") if phone is not None else ""
    if phone is not None and not (digits.isascii() and digits.isdigit()):
        raise InvalidInput("phone may hold digits, spaces, dashes, brackets and a leading +")
    return email, phone


def ensure_contacts_free(
    session: Session, *, email: str | None, phone: str | None, except_user_id: int | None = None
) -> None:
    """Checks up front for a clear 409; flush_user_change still catches the racing insert."""
    for column, value, key in (
        (User.email, email, "users_email_live_key"),
        (User.phone, phone, "users_phone_live_key"),
    ):
        if value is None:
            continue
        query = select(User.id).where(column == value, User.deleted_at.is_(None))
        if except_user_id is not None:
            query = query.where(User.id != except_user_id)
        if session.scalar(query.limit(1)) is not None:
            raise DuplicateValue(CONTACT_CONSTRAINTS[key])


def flush_user_change(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        name = violated_constraint(exc)
        if name in CONTACT_CONSTRAINTS:
            session.rollback()
            raise DuplicateValue(CONTACT_CONSTRAINTS[name]) from exc
        raise


def new_user(
    session: Session,
    *,
    role: Role,
    name: str,
    email: str | None,
    phone: str | None,
    password: str,
    status: UserStatus = UserStatus.ACTIVE,
    capacity_boxes: int | None = None,
    password_hash: str | None = None,
) -> User:
    """Adds (and flushes) a user; the caller commits. password_hash: password already hashed
    (outside any transaction, so no database lock is held through the slow hash)."""
    email, phone = clean_contacts(email, phone)
    if email is None and phone is None:
        raise InvalidInput("an email or a phone is required")
    ensure_contacts_free(session, email=email, phone=phone)
    user = User(
        role=role,
        status=status,
        name=name,
        email=email,
        phone=phone,
        password_hash=password_hash or hash_password(password),
    )
    if capacity_boxes is not None:
        user.capacity_boxes = capacity_boxes
    session.add(user)
    flush_user_change(session)
    return user


def store_ids_of(session: Session, user: User) -> list[int]:
    """The active stores the user acts for: a suspended or offboarded store grants nothing."""
    if user.role != Role.STORE:
        return []
    return list(
        session.scalars(
            select(StoreMembership.store_id)
            .join(Store, Store.id == StoreMembership.store_id)
            .where(
                StoreMembership.user_id == user.id,
                Store.status == StoreStatus.ACTIVE,
                Store.deleted_at.is_(None),
            )
            .order_by(StoreMembership.store_id)
        )
    )


def revoke_sessions(session: Session, *, user_id: int, except_family_id: int | None = None) -> None:
    """Ends every unrevoked session of the user (optionally all but one); the caller commits."""
    query = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if except_family_id is not None:
        query = query.where(UserSession.family_id != except_family_id)
    session.execute(query.values(revoked_at=utcnow()))


def apply_credentials(
    session: Session,
    *,
    user: User,
    email: str | None,
    phone: str | None,
    password: str | None,
) -> bool:
    """Blank or missing fields stay unchanged. Returns whether the password changed."""
    new_email, new_phone = clean_contacts(email, phone)
    ensure_contacts_free(session, email=new_email, phone=new_phone, except_user_id=user.id)
    if new_email is not None:
        user.email = new_email
    if new_phone is not None:
        user.phone = new_phone
    password_changed = bool(password and password.strip())
    if password_changed:
        assert password is not None
        user.password_hash = hash_password(password)  # refuses a password below the policy
        revoke_sessions(session, user_id=user.id)
    flush_user_change(session)
    return password_changed
