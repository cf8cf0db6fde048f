"""Push jobs written with an event: one per enabled device of everyone who sees it but the actor."""

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Device, PushJob, User, UserStatus
from tests.builders import make_order, make_user
from tests.orders_helpers import World


def _device(db: Session, user: User, *, disabled: bool = False) -> Device:
    device = Device(
        user_id=user.id,
        token=f"{user.id:08x}{'d' if disabled else 'e'}" * 4,
        disabled_at=datetime.now(UTC) if disabled else None,
    )
    db.add(device)
    db.commit()
    return device


def _jobs_of_last_event(db: Session) -> set[int]:
    last = db.scalar(select(PushJob.event_id).order_by(PushJob.event_id.desc()).limit(1))
    return set(db.scalars(select(PushJob.device_id).where(PushJob.event_id == last)))


def test_a_pool_claim_is_pushed_to_admins_the_store_and_every_other_courier(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    admin = _device(db, world.admin)
    store = _device(db, world.store_user)
    other_store = _device(db, world.other_store_user)
    actor = _device(db, world.courier)
    other_courier = _device(db, world.other_courier)
    _device(db, make_user(db), disabled=True)
    _device(db, make_user(db, status=UserStatus.SUSPENDED))

    response = client.post(f"/v1/orders/{order.id}/claim", headers=world.h_courier)

    assert response.status_code == 200
    jobs = _jobs_of_last_event(db)
    assert jobs == {admin.id, store.id, other_courier.id}
    assert actor.id not in jobs
    assert other_store.id not in jobs


def test_a_change_outside_the_pool_is_not_pushed_to_other_couriers(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    admin = _device(db, world.admin)
    store = _device(db, world.store_user)
    actor = _device(db, world.courier)
    _device(db, world.other_courier)

    response = client.post(
        f"/v1/orders/{order.id}/status", json={"status": "picked_up"}, headers=world.h_courier
    )

    assert response.status_code == 200
    assert _jobs_of_last_event(db) == {admin.id, store.id}
    assert actor.id not in _jobs_of_last_event(db)
