"""Stores and their staff: create, edit, status, the owner's credentials, memberships."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import DuplicateValue, InvalidInput, NotFound
from app.db.errors import violated_constraint
from app.db.models import Role, Store, StoreMembership, StoreRole, StoreStatus, User, UserStatus
from app.schemas.admin import StoreCreate, StoreUpdate
from app.services.auth import Principal
from app.services.users import apply_credentials, new_user, revoke_sessions


def get_store(session: Session, *, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None or store.deleted_at is not None:
        raise NotFound("Store not found")
    return store


def list_stores(session: Session, *, principal: Principal) -> list[Store]:
    query = select(Store).where(Store.deleted_at.is_(None)).order_by(Store.name, Store.id)
    if principal.role == Role.STORE:
        query = query.where(Store.id.in_(principal.store_ids))
    elif principal.role != Role.ADMIN:
        return []
    return list(session.scalars(query))


def _ensure_name_free(session: Session, name: str, except_id: int | None = None) -> None:
    query = select(Store.id).where(Store.name == name, Store.deleted_at.is_(None))
    if except_id is not None:
        query = query.where(Store.id != except_id)
    if session.scalar(query.limit(1)) is not None:
        raise DuplicateValue("A store with this name already exists")


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        if violated_constraint(exc) == "stores_name_live_key":
            session.rollback()
            raise DuplicateValue("A store with this name already exists") from exc
        raise


def create_store(session: Session, *, data: StoreCreate) -> Store:
    _ensure_name_free(session, data.name)
    store = Store(
        name=data.name,
        pickup_address=data.pickup_address,
        phone=data.phone,
        box_limit=data.box_limit,
        hours_text=data.hours_text,
        status=data.status,
    )
    session.add(store)
    _flush(session)
    session.commit()
    return store


def update_store(session: Session, *, store_id: int, data: StoreUpdate) -> Store:
    """Applies every field sent (a null or blank optional one clears it); `status` with the
    side effects of the status endpoint."""
    store = get_store(session, store_id=store_id)
    sent = data.model_fields_set
    if data.name is not None:  # the one required field cannot be blanked
        _ensure_name_free(session, data.name, except_id=store.id)
        store.name = data.name
    if "pickup_address" in sent:
        store.pickup_address = data.pickup_address
    if "phone" in sent:
        store.phone = data.phone
    if "box_limit" in sent:
        store.box_limit = data.box_limit
    if "hours_text" in sent:
        store.hours_text = data.hours_text
    if data.status is not None:
        _apply_store_status(session, store=store, status=data.status)
    _flush(session)
    session.commit()
    return store


def _store_user_ids(session: Session, store_id: int) -> list[int]:
    return list(
        session.scalars(select(StoreMembership.user_id).where(StoreMembership.store_id == store_id))
    )


def _apply_store_status(session: Session, *, store: Store, status: StoreStatus) -> None:
    store.status = status
    if status != StoreStatus.ACTIVE:
        # Its users' sessions end, and with them their open streams.
        for user_id in _store_user_ids(session, store.id):
            revoke_sessions(session, user_id=user_id)


def set_store_status(session: Session, *, store_id: int, status: StoreStatus) -> Store:
    store = get_store(session, store_id=store_id)
    _apply_store_status(session, store=store, status=status)
    session.commit()
    return store


def _owner(session: Session, store_id: int) -> User | None:
    return session.scalar(
        select(User)
        .join(StoreMembership, StoreMembership.user_id == User.id)
        .where(
            StoreMembership.store_id == store_id,
            StoreMembership.role_in_store == StoreRole.OWNER,
            User.deleted_at.is_(None),
        )
        .order_by(StoreMembership.id)
        .limit(1)
    )


def set_store_credentials(
    session: Session,
    *,
    store_id: int,
    name: str | None,
    email: str | None,
    phone: str | None,
    password: str | None,
) -> User:
    """Creates the store's owner account on first call; later calls update what is given."""
    store = get_store(session, store_id=store_id)
    owner = _owner(session, store.id)
    if owner is None:
        if not password or not password.strip():
            raise InvalidInput("password is required to create the store's account")
        owner = new_user(
            session,
            role=Role.STORE,
            name=name or store.name,
            email=email,
            phone=phone,
            password=password,
        )
        session.add(StoreMembership(user_id=owner.id, store_id=store.id, role_in_store="owner"))
    else:
        if name:
            owner.name = name
        apply_credentials(session, user=owner, email=email, phone=phone, password=password)
    session.commit()
    return owner


def list_store_users(session: Session, *, store_id: int) -> list[tuple[User, StoreMembership]]:
    get_store(session, store_id=store_id)
    rows = session.execute(
        select(User, StoreMembership)
        .join(StoreMembership, StoreMembership.user_id == User.id)
        .where(StoreMembership.store_id == store_id, User.deleted_at.is_(None))
        .order_by(User.id)
    )
    return [(user, membership) for user, membership in rows.all()]


def create_store_user(
    session: Session,
    *,
    store_id: int,
    name: str,
    email: str | None,
    phone: str | None,
    password: str,
    role_in_store: StoreRole,
) -> tuple[User, StoreMembership]:
    store = get_store(session, store_id=store_id)
    user = new_user(
        session, role=Role.STORE, name=name, email=email, phone=phone, password=password
    )
    membership = StoreMembership(user_id=user.id, store_id=store.id, role_in_store=role_in_store)
    session.add(membership)
    session.commit()
    return user, membership


def add_store_user(
    session: Session, *, store_id: int, user_id: int, role_in_store: StoreRole
) -> tuple[User, StoreMembership]:
    store = get_store(session, store_id=store_id)
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None or user.role != Role.STORE:
        raise NotFound("Store user not found")
    exists = session.scalar(
        select(StoreMembership).where(
            StoreMembership.user_id == user.id, StoreMembership.store_id == store.id
        )
    )
    if exists is not None:
        raise DuplicateValue("The user already belongs to this store")
    membership = StoreMembership(user_id=user.id, store_id=store.id, role_in_store=role_in_store)
    session.add(membership)
    session.commit()
    return user, membership


def remove_store_user(session: Session, *, store_id: int, user_id: int) -> None:
    get_store(session, store_id=store_id)
    membership = session.scalar(
        select(StoreMembership).where(
            StoreMembership.user_id == user_id, StoreMembership.store_id == store_id
        )
    )
    if membership is None:
        raise NotFound("The user does not belong to this store")
    session.delete(membership)
    session.flush()
    remaining = session.scalar(
        select(StoreMembership.id).where(StoreMembership.user_id == user_id).limit(1)
    )
    if remaining is None:
        # A store account that belongs to no store can do nothing; end it.
        user = session.get(User, user_id)
        if user is not None:
            user.status = UserStatus.OFFBOARDED
            revoke_sessions(session, user_id=user_id)
    session.commit()
