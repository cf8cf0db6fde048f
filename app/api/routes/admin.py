"""Admin management of couriers, stores, store staff and self-registered accounts."""

from fastapi import APIRouter, Depends

from app.api.deps import AdminUser, SessionDep, admin_only
from app.api.errors import responses
from app.api.params import PathId
from app.api.routes.couriers import duty_read
from app.schemas.admin import (
    CourierCreate,
    CourierRead,
    CourierUpdate,
    Credentials,
    DutyChange,
    DutyRead,
    StoreCreate,
    StoreCredentials,
    StoreRead,
    StoreStatusChange,
    StoreUpdate,
    StoreUserAdd,
    StoreUserCreate,
    StoreUserRead,
    UserStatusChange,
    store_user_read,
)
from app.schemas.auth import UserRead
from app.schemas.common import Ok
from app.services import couriers as couriers_service
from app.services import stores as stores_service

# Every route under /v1/admin is for admins: the router checks the role once for all of them,
# so a route added later cannot forget it (tests/test_admin.py enumerates this router).
router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_only)],
    responses=responses(401, 403),
)


@router.get("/couriers")
def list_couriers(session: SessionDep) -> list[CourierRead]:
    return [CourierRead.model_validate(c) for c in couriers_service.list_couriers(session)]


@router.post("/couriers", status_code=201, responses=responses(409, 422))
def create_courier(body: CourierCreate, session: SessionDep) -> CourierRead:
    courier = couriers_service.create_courier(session, data=body)
    return CourierRead.model_validate(courier)


@router.get("/couriers/{courier_id}", responses=responses(404))
def get_courier(courier_id: PathId, session: SessionDep) -> CourierRead:
    return CourierRead.model_validate(couriers_service.get_courier(session, courier_id=courier_id))


@router.patch("/couriers/{courier_id}", responses=responses(404, 409, 422))
def update_courier(courier_id: PathId, body: CourierUpdate, session: SessionDep) -> CourierRead:
    courier = couriers_service.update_courier(session, courier_id=courier_id, data=body)
    return CourierRead.model_validate(courier)


@router.post("/couriers/{courier_id}/status", responses=responses(404, 422))
def set_courier_status(
    courier_id: PathId, body: UserStatusChange, session: SessionDep
) -> CourierRead:
    courier = couriers_service.set_courier_status(
        session, courier_id=courier_id, status=body.status
    )
    return CourierRead.model_validate(courier)


@router.post("/couriers/{courier_id}/duty", responses=responses(404, 422))
def set_courier_duty(courier_id: PathId, body: DutyChange, session: SessionDep) -> DutyRead:
    change = couriers_service.set_duty(
        session, courier_id=courier_id, on_duty=body.on_duty, by="admin"
    )
    return duty_read(change)


@router.post("/couriers/{courier_id}/credentials", responses=responses(404, 409, 422))
def set_courier_credentials(
    courier_id: PathId, body: Credentials, session: SessionDep
) -> CourierRead:
    courier = couriers_service.set_courier_credentials(
        session, courier_id=courier_id, email=body.email, phone=body.phone, password=body.password
    )
    return CourierRead.model_validate(courier)


@router.post("/users/{user_id}/approve", responses=responses(404, 422))
def approve_user(user_id: PathId, session: SessionDep) -> UserRead:
    return UserRead.model_validate(couriers_service.approve_user(session, user_id=user_id))


@router.get("/stores")
def list_stores(admin: AdminUser, session: SessionDep) -> list[StoreRead]:
    stores = stores_service.list_stores(session, principal=admin)
    return [StoreRead.model_validate(s) for s in stores]


@router.post("/stores", status_code=201, responses=responses(409, 422))
def create_store(body: StoreCreate, session: SessionDep) -> StoreRead:
    store = stores_service.create_store(session, data=body)
    return StoreRead.model_validate(store)


@router.get("/stores/{store_id}", responses=responses(404))
def get_store(store_id: PathId, session: SessionDep) -> StoreRead:
    return StoreRead.model_validate(stores_service.get_store(session, store_id=store_id))


@router.patch("/stores/{store_id}", responses=responses(404, 409, 422))
def update_store(store_id: PathId, body: StoreUpdate, session: SessionDep) -> StoreRead:
    store = stores_service.update_store(session, store_id=store_id, data=body)
    return StoreRead.model_validate(store)


@router.post("/stores/{store_id}/status", responses=responses(404, 422))
def set_store_status(store_id: PathId, body: StoreStatusChange, session: SessionDep) -> StoreRead:
    store = stores_service.set_store_status(session, store_id=store_id, status=body.status)
    return StoreRead.model_validate(store)


@router.post("/stores/{store_id}/credentials", responses=responses(404, 409, 422))
def set_store_credentials(
    store_id: PathId, body: StoreCredentials, session: SessionDep
) -> UserRead:
    owner = stores_service.set_store_credentials(
        session,
        store_id=store_id,
        name=body.name,
        email=body.email,
        phone=body.phone,
        password=body.password,
    )
    return UserRead.model_validate(owner).model_copy(update={"store_ids": [store_id]})


@router.get("/stores/{store_id}/users", responses=responses(404))
def list_store_users(store_id: PathId, session: SessionDep) -> list[StoreUserRead]:
    rows = stores_service.list_store_users(session, store_id=store_id)
    return [store_user_read(user, membership) for user, membership in rows]


@router.post("/stores/{store_id}/users", status_code=201, responses=responses(404, 409, 422))
def create_store_user(
    store_id: PathId, body: StoreUserCreate | StoreUserAdd, session: SessionDep
) -> StoreUserRead:
    if isinstance(body, StoreUserAdd):
        user, membership = stores_service.add_store_user(
            session, store_id=store_id, user_id=body.user_id, role_in_store=body.role_in_store
        )
    else:
        user, membership = stores_service.create_store_user(
            session,
            store_id=store_id,
            name=body.name,
            email=body.email,
            phone=body.phone,
            password=body.password,
            role_in_store=body.role_in_store,
        )
    return store_user_read(user, membership)


@router.delete("/stores/{store_id}/users/{user_id}", responses=responses(404))
def remove_store_user(store_id: PathId, user_id: PathId, session: SessionDep) -> Ok:
    stores_service.remove_store_user(session, store_id=store_id, user_id=user_id)
    return Ok()
