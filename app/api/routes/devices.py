"""Device endpoints: register an APNs token for push, list and remove the caller's devices."""

from fastapi import APIRouter

from app.api.deps import CurrentUser, SessionDep
from app.api.errors import responses
from app.api.params import PathText
from app.schemas.common import Ok
from app.schemas.devices import DeviceRead, DeviceRegister, DeviceRegistered
from app.services import devices as devices_service

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post("/register", responses=responses(401, 422))
def register_device(
    body: DeviceRegister, principal: CurrentUser, session: SessionDep
) -> DeviceRegistered:
    device, created = devices_service.register_device(
        session,
        principal=principal,
        platform=body.platform,
        token=body.token,
        environment=body.environment,
        app_version=body.app_version,
    )
    return DeviceRegistered(
        id=device.id, platform=device.platform, environment=device.environment, created=created
    )


@router.get("", responses=responses(401))
def list_devices(principal: CurrentUser, session: SessionDep) -> list[DeviceRead]:
    devices = devices_service.list_devices(session, principal=principal)
    return [DeviceRead.model_validate(d) for d in devices]


@router.delete("/{token}", responses=responses(401, 404))
def unregister_device(token: PathText, principal: CurrentUser, session: SessionDep) -> Ok:
    devices_service.unregister_device(session, principal=principal, token=token)
    return Ok()
