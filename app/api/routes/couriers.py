"""The dispatch board (active couriers with their load, most available first) and duty."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AdminUser, CourierUser, SessionDep
from app.api.errors import responses
from app.schemas.admin import DutyChange, DutyRead
from app.schemas.orders import CourierLoad
from app.services import couriers as couriers_service
from app.services.dispatch_board import courier_loads

router = APIRouter(prefix="/v1/couriers", tags=["couriers"], responses=responses(401, 403))


@router.get("")
def list_couriers(
    _admin: AdminUser, session: SessionDep, available_only: Annotated[bool, Query()] = False
) -> list[CourierLoad]:
    return courier_loads(session, available_only=available_only)


def duty_read(change: couriers_service.DutyChange) -> DutyRead:
    courier, active = change.courier, change.active_orders
    if courier.on_duty:
        message = "On duty: orders can be taken and assigned"
    elif active:
        message = (
            f"Off duty with {active} active order{'s' if active != 1 else ''} still held: "
            "finish, decline or hand them back"
        )
    else:
        message = "Off duty: no new orders until back on duty"
    return DutyRead(id=courier.id, on_duty=courier.on_duty, active_orders=active, message=message)


@router.post("/me/duty", responses=responses(422))
def set_my_duty(body: DutyChange, courier: CourierUser, session: SessionDep) -> DutyRead:
    change = couriers_service.set_duty(
        session, courier_id=courier.user.id, on_duty=body.on_duty, by="courier"
    )
    return duty_read(change)
