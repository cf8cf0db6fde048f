"""Demo data for `make run`: an admin, two stores with staff, couriers, and sample orders."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import (
    EventType,
    Order,
    OrderEvent,
    OrderStatus,
    Role,
    Store,
    StoreMembership,
    StoreRole,
    User,
)
from app.schemas.orders import OrderCreate
from app.services.auth import Principal
from app.services.demo_proofs import seed_outcomes
from app.services.order_lifecycle import claim_order, redeliver_order, return_order, set_status
from app.services.orders import create_order
from app.services.users import new_user

DEMO_PASSWORD = "zariz-demo-1"  # noqa: S105  (demo data only; seed-demo is refused in production)


def _user(session: Session, *, role: Role, name: str, email: str, phone: str) -> User:
    existing = session.scalar(select(User).where(User.email == email))
    if existing is not None:
        return existing
    return new_user(session, role=role, name=name, email=email, phone=phone, password=DEMO_PASSWORD)


def _store(session: Session, *, name: str, address: str, owner: User) -> Store:
    store = session.scalar(select(Store).where(Store.name == name))
    if store is None:
        store = Store(name=name, pickup_address=address, phone="+972 3 555 0100")
        session.add(store)
        session.flush()
        session.add(
            StoreMembership(user_id=owner.id, store_id=store.id, role_in_store=StoreRole.OWNER)
        )
        session.flush()
    return store


def seed_demo(session: Session) -> list[tuple[str, str, str]]:
    """Idempotent: running it twice adds nothing the first run made."""
    admin = _user(
        session, role=Role.ADMIN, name="Dana Admin", email="admin@zariz.demo", phone="+972500000001"
    )
    owner = _user(
        session,
        role=Role.STORE,
        name="Shira Store",
        email="store@zariz.demo",
        phone="+972500000002",
    )
    owner2 = _user(
        session,
        role=Role.STORE,
        name="Avi Bakery",
        email="bakery@zariz.demo",
        phone="+972500000003",
    )
    couriers = [
        _user(
            session,
            role=Role.COURIER,
            name=f"Courier {n}",
            email=f"courier{n}@zariz.demo",
            phone=f"+97250000010{n}",
        )
        for n in range(1, 4)
    ]
    store = _store(session, name="Zariz Demo Market", address="Herzl St 1, Tel Aviv", owner=owner)
    _store(session, name="Demo Bakery", address="Dizengoff St 50, Tel Aviv", owner=owner2)
    session.commit()
    _orders(session, store=store, owner=owner, couriers=couriers)
    seed_outcomes(session, store=store, owner=owner, couriers=couriers)
    _after_failures(session, store=store, owner=owner, couriers=couriers)
    _windowed_orders(session, store=store, owner=owner, couriers=couriers)
    logins = [
        ("admin", admin.email or "", DEMO_PASSWORD),
        ("store", owner.email or "", DEMO_PASSWORD),
        ("store", owner2.email or "", DEMO_PASSWORD),
    ]
    logins += [("courier", c.email or "", DEMO_PASSWORD) for c in couriers]
    return logins


DEMO_RECIPIENTS = [
    ("Noa", "Levi", "Dizengoff", "120", 2),
    ("יוסי", "כהן", "Ibn Gabirol", "30", 5),
    ("Maya", "Katz", "Rothschild", "8", 12),
    ("Eitan", "Mizrahi", "Allenby", "77", 1),
]


def _orders(session: Session, *, store: Store, owner: User, couriers: list[User]) -> None:
    """A few orders in different states, made through the real services (events included)."""
    if session.scalar(select(Order.id).where(Order.store_id == store.id).limit(1)) is not None:
        return
    principal = Principal(user=owner, session_id=0, family_id=0, store_ids=(store.id,))
    created = []
    for first, last, street, building, boxes in DEMO_RECIPIENTS:
        data = OrderCreate(
            recipient_first_name=first,
            recipient_last_name=last,
            phone="+972 50 555 0199",
            street=street,
            building_no=building,
            boxes_count=boxes,
        )
        created.append(create_order(session, principal=principal, data=data))
    courier = Principal(user=couriers[0], session_id=0, family_id=0, store_ids=())
    claim_order(session, order_id=created[0].id, courier=courier)
    set_status(
        session,
        order_id=created[0].id,
        status=OrderStatus.PICKED_UP,
        note=None,
        reason=None,
        actor=courier,
    )


def _after_failures(session: Session, *, store: Store, owner: User, couriers: list[User]) -> None:
    """Two failed deliveries: one returned to the store, one sent out again to the pool."""
    done = session.scalar(
        select(OrderEvent.id)
        .where(OrderEvent.store_id == store.id, OrderEvent.type == EventType.RETURNED)
        .limit(1)
    )
    if done is not None:
        return
    principal = Principal(user=owner, session_id=0, family_id=0, store_ids=(store.id,))
    courier = Principal(user=couriers[2], session_id=0, family_id=0, store_ids=())
    failed = []
    for first, last, street, building in (
        ("Lior", "Peretz", "King George", "15"),
        ("Yael", "Friedman", "Ben Yehuda", "92"),
    ):
        data = OrderCreate(
            recipient_first_name=first,
            recipient_last_name=last,
            phone="+972 50 555 0177",
            street=street,
            building_no=building,
            boxes_count=1,
        )
        order = create_order(session, principal=principal, data=data)
        claim_order(session, order_id=order.id, courier=courier)
        for status in (OrderStatus.PICKED_UP, OrderStatus.FAILED):
            set_status(
                session,
                order_id=order.id,
                status=status,
                note="Nobody answered the door" if status == OrderStatus.FAILED else None,
                reason=None,
                reason_code="recipient_absent" if status == OrderStatus.FAILED else None,
                actor=courier,
            )
        failed.append(order)
    return_order(session, order_id=failed[0].id, actor=principal)
    redeliver_order(session, order_id=failed[1].id, courier_id=None, actor=principal)


def _windowed_orders(session: Session, *, store: Store, owner: User, couriers: list[User]) -> None:
    """Orders with time windows: one due later today, one late now, one delivered late."""
    if session.scalar(select(Order.id).where(Order.deliver_before.is_not(None)).limit(1)):
        return
    principal = Principal(user=owner, session_id=0, family_id=0, store_ids=(store.id,))
    now = utcnow()
    made = []
    for first, last, street in (("Tamar", "Shani", "Bograshov"), ("Omer", "Adler", "Shenkin")):
        data = OrderCreate(
            recipient_first_name=first,
            recipient_last_name=last,
            phone="+972 50 555 0177",
            street=street,
            building_no="12",
            pickup_after=now,
            pickup_before=now + timedelta(hours=1),
            deliver_after=now + timedelta(minutes=30),
            deliver_before=now + timedelta(hours=2),
        )
        made.append(create_order(session, principal=principal, data=data))
    # Windows cannot be created in the past: backdate two as if they had been made this morning.
    for order in made:
        session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(
                pickup_after=now - timedelta(hours=3),
                pickup_before=now - timedelta(hours=2),
                deliver_after=now - timedelta(hours=2),
                deliver_before=now - timedelta(minutes=30),
            )
        )
    session.commit()
    courier = Principal(user=couriers[1], session_id=0, family_id=0, store_ids=())
    claim_order(session, order_id=made[1].id, courier=courier)
    for status in (OrderStatus.PICKED_UP, OrderStatus.DELIVERED):
        set_status(
            session, order_id=made[1].id, status=status, note=None, reason=None, actor=courier
        )
    # And one on time, due in two hours.
    create_order(
        session,
        principal=principal,
        data=OrderCreate(
            recipient_first_name="Lior",
            recipient_last_name="Peretz",
            phone="+972 50 555 0178",
            street="King George",
            building_no="40",
            deliver_before=now + timedelta(hours=2),
        ),
    )
