"""Shared fixtures for order tests: a store with its user, couriers, an admin, and headers."""

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from app.db.models import Role, Store, User
from tests.builders import auth_headers, make_store, make_store_user, make_user

ORDER_BODY = {
    "recipient_first_name": "Noa",
    "recipient_last_name": "Levi",
    "phone": "+972-50-123-4567",
    "street": "Dizengoff",
    "building_no": "100",
    "floor": "3",
    "apartment": "12",
    "boxes_count": 3,
}


@dataclass
class World:
    store: Store
    other_store: Store
    store_user: User
    other_store_user: User
    courier: User
    other_courier: User
    admin: User
    h_store: dict[str, str]
    h_other_store: dict[str, str]
    h_courier: dict[str, str]
    h_other_courier: dict[str, str]
    h_admin: dict[str, str]


@pytest.fixture
def world(db: Session) -> World:
    store, other_store = make_store(db), make_store(db)
    store_user = make_store_user(db, store=store)
    other_store_user = make_store_user(db, store=other_store)
    courier, other_courier = make_user(db, capacity_boxes=8), make_user(db, capacity_boxes=8)
    admin = make_user(db, role=Role.ADMIN)
    return World(
        store=store,
        other_store=other_store,
        store_user=store_user,
        other_store_user=other_store_user,
        courier=courier,
        other_courier=other_courier,
        admin=admin,
        h_store=auth_headers(db, store_user),
        h_other_store=auth_headers(db, other_store_user),
        h_courier=auth_headers(db, courier),
        h_other_courier=auth_headers(db, other_courier),
        h_admin=auth_headers(db, admin),
    )
