"""The dispatch board: active couriers with their current load, most available first."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AdminUser, SessionDep
from app.api.errors import responses
from app.schemas.orders import CourierLoad
from app.services.dispatch_board import courier_loads

router = APIRouter(prefix="/v1/couriers", tags=["couriers"], responses=responses(401, 403))


@router.get("")
def list_couriers(
    _admin: AdminUser, session: SessionDep, available_only: Annotated[bool, Query()] = False
) -> list[CourierLoad]:
    return courier_loads(session, available_only=available_only)
