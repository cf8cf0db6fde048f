"""The client suite's world: a store, couriers and an admin, and each real client signed in."""

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import Order, Role, Store, User
from app.services.pricing import price_for
from tests.builders import login_tokens, make_store, make_store_user, make_user
from tests.clients.contract import IosApp, WebAdmin


@dataclass
class World:
    store: Store
    store_user: User
    courier: User
    other_courier: User
    admin: User


@pytest.fixture
def world(db: Session) -> World:
    store = make_store(db)
    return World(
        store=store,
        store_user=make_store_user(db, store=store),
        courier=make_user(db, role=Role.COURIER, capacity_boxes=20),
        other_courier=make_user(db, role=Role.COURIER, capacity_boxes=20),
        admin=make_user(db, role=Role.ADMIN),
    )


def signed_in_web_admin(http: TestClient, db: Session, admin: User) -> WebAdmin:
    access, refresh = login_tokens(db, admin)
    return WebAdmin(http, access_token=access, refresh_token=refresh)


def signed_in_app(http: TestClient, db: Session, user: User) -> IosApp:
    access, refresh = login_tokens(db, user)
    return IosApp(http, access_token=access, refresh_token=refresh)


@pytest.fixture
def web_admin(client: TestClient, db: Session, world: World) -> WebAdmin:
    return signed_in_web_admin(client, db, world.admin)


@pytest.fixture
def courier_app(client: TestClient, db: Session, world: World) -> IosApp:
    return signed_in_app(client, db, world.courier)


@pytest.fixture
def store_ipad(client: TestClient, db: Session, world: World) -> IosApp:
    return signed_in_app(client, db, world.store_user)


def add_orders(
    db: Session,
    *,
    store: Store,
    count: int,
    status: str = "new",
    courier: User | None = None,
    boxes_count: int = 1,
) -> list[Order]:
    """Many order rows in one flush (no events): lists over a hundred need them."""
    multiplier, total = price_for(boxes_count)
    orders = [
        Order(
            store_id=store.id,
            courier_id=courier.id if courier else None,
            status=status,
            pickup_address=store.pickup_address,
            delivery_address=f"Dizengoff {n}",
            recipient_first_name="Noa",
            recipient_last_name=f"Levi {n}",
            phone="+972501234567",
            street="Dizengoff",
            building_no=str(n),
            boxes_count=boxes_count,
            boxes_multiplier=multiplier,
            price_total=total,
        )
        for n in range(count)
    ]
    db.add_all(orders)
    db.commit()
    return orders
