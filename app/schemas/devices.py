"""Bodies of the device endpoints: registering an APNs token and listing the caller's devices."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints, field_validator

from app.db.models import ApnsEnvironment, Platform
from app.schemas.common import ReadModel, RequestModel

# APNs tokens are 32 bytes today; Apple warns they may grow, so allow up to the column's 100 bytes.
MIN_TOKEN_HEX = 32
MAX_TOKEN_HEX = 200

DeviceToken = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=MIN_TOKEN_HEX,
        max_length=MAX_TOKEN_HEX,
        pattern=r"^[0-9A-Fa-f]+$",
    ),
]


class DeviceRegister(RequestModel):
    platform: Platform = Platform.IOS
    token: DeviceToken
    environment: ApnsEnvironment = ApnsEnvironment.PRODUCTION
    app_version: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = (
        None
    )

    @field_validator("token")
    @classmethod
    def _whole_bytes(cls, value: str) -> str:
        if len(value) % 2:
            raise ValueError("token must be whole bytes in hex (an even number of digits)")
        # One spelling per token, so the unique index sees "AB.." and "ab.." as the same device.
        return value.lower()


class DeviceRegistered(BaseModel):
    id: int
    platform: str
    environment: str
    created: bool


class DeviceRead(ReadModel):
    id: int
    platform: str
    token: str
    environment: str
    app_version: str | None
    created_at: datetime
    last_seen_at: datetime | None
