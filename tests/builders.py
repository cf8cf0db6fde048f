"""Small typed builders for test data, and real tokens for test users."""

import itertools

from sqlalchemy.orm import Session

from app.core.security import create_access_token
from app.db.models import Order, Role, Store, StoreMembership, StoreRole, User, UserStatus
from app.services.auth import _issue
from app.services.users import new_user

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_user(
    session: Session,
    *,
    role: Role = Role.COURIER,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    password: str = PASSWORD,
    status: UserStatus = UserStatus.ACTIVE,
    capacity_boxes: int = 8,
) -> User:
    n = next(_seq)
    user = new_user(
        session,
        role=role,
        name=name or f"{role.value.title()} {n}",
        email=email if email is not None else f"{role.value}{n}@example.com",
        phone=phone,
        password=password,
        status=status,
        capacity_boxes=capacity_boxes,
    )
    session.commit()
    return user


def make_store(session: Session, *, name: str | None = None, status: str = "active") -> Store:
    store = Store(
        name=name or f"Store {next(_seq)}", pickup_address="Herzl 1, Tel Aviv", status=status
    )
    session.add(store)
    session.commit()
    return store


def make_store_user(
    session: Session, *, store: Store, role_in_store: StoreRole = StoreRole.OWNER
) -> User:
    user = make_user(session, role=Role.STORE)
    session.add(StoreMembership(user_id=user.id, store_id=store.id, role_in_store=role_in_store))
    session.commit()
    return user


def login_tokens(session: Session, user: User) -> tuple[str, str]:
    """A real session row and a real access token, without the slow password check."""
    tokens = _issue(session, user=user, family_id=None, user_agent="tests")
    session.commit()
    return tokens.access_token, tokens.refresh_token


def auth_headers(session: Session, user: User) -> dict[str, str]:
    access, _ = login_tokens(session, user)
    return {"Authorization": f"Bearer {access}"}


def token_for(*, user_id: int, role: str, session_id: int) -> str:
    return create_access_token(user_id=user_id, role=role, session_id=session_id, store_ids=[])


def make_order(
    session: Session,
    *,
    store: Store,
    status: str = "new",
    courier: User | None = None,
    boxes_count: int = 1,
    created_by: User | None = None,
) -> Order:
    """An order row in any status (no event): for tests that need a starting state."""

    from app.services.pricing import price_for

    multiplier, total = price_for(boxes_count)
    order = Order(
        store_id=store.id,
        courier_id=courier.id if courier else None,
        status=status,
        pickup_address=store.pickup_address,
        delivery_address="Dizengoff 100, 3, 12",
        recipient_first_name="Noa",
        recipient_last_name="Levi",
        phone="+972501234567",
        street="Dizengoff",
        building_no="100",
        floor="3",
        apartment="12",
        boxes_count=boxes_count,
        boxes_multiplier=multiplier,
        price_total=total,
        created_by_id=created_by.id if created_by else None,
    )
    session.add(order)
    session.commit()
    return order
