"""The stores a caller may see: all for admins, their own for store users."""

from fastapi import APIRouter

from app.api.deps import CurrentUser, SessionDep
from app.api.errors import responses
from app.schemas.admin import StoreRead
from app.services import stores as stores_service

router = APIRouter(prefix="/v1/stores", tags=["stores"])


@router.get("", responses=responses(401))
def list_stores(principal: CurrentUser, session: SessionDep) -> list[StoreRead]:
    stores = stores_service.list_stores(session, principal=principal)
    return [StoreRead.model_validate(s) for s in stores]
