"""Bodies of the admin endpoints: couriers, stores and store staff."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from app.core.security import PASSWORD_MAX_LENGTH
from app.db.models import StoreMembership, StoreRole, StoreStatus, User, UserStatus
from app.schemas.common import (
    BlankIsNone,
    Email,
    IdInt,
    Name,
    Password,
    Phone,
    ReadModel,
    RequestModel,
)

Capacity = Annotated[int, Field(ge=1, le=200)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
OptionalAddress = Annotated[Address | None, BlankIsNone]
BoxLimit = Annotated[int, Field(ge=1, le=10_000)]
HoursText = Annotated[Annotated[str, StringConstraints(max_length=200)] | None, BlankIsNone]
StorePhone = Annotated[Phone | None, BlankIsNone]
# Keys of the read models a form may send back unchanged; they are not edits.
READ_ONLY_KEYS = frozenset({"id", "created_at", "updated_at", "last_login_at"})


class AdminForm(RequestModel):
    """A create or edit body of the admin forms: every key is applied or is a 422 naming it."""

    # Forbidden, not ignored: a key the API cannot apply must never come back as a silent 200.
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in READ_ONLY_KEYS}
        return data


class CourierCreate(AdminForm):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    password: Password
    capacity_boxes: Capacity | None = None
    status: UserStatus = UserStatus.ACTIVE
    on_duty: StrictBool = True


class CourierUpdate(AdminForm):
    """The web admin's courier form: blank email, phone or password mean "unchanged"."""

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    capacity_boxes: Capacity | None = None
    status: UserStatus | None = None
    password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX_LENGTH)] | None = None
    on_duty: StrictBool | None = None


class CourierRead(ReadModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    status: str
    capacity_boxes: int
    on_duty: bool
    created_at: datetime
    last_login_at: datetime | None


class DutyChange(RequestModel):
    on_duty: StrictBool


class DutyRead(BaseModel):
    id: int
    on_duty: bool
    # Orders the courier still holds (assigned, accepted, picked up): going off duty keeps them.
    active_orders: int
    message: str


class UserStatusChange(RequestModel):
    status: UserStatus


class StoreStatusChange(RequestModel):
    status: StoreStatus


class Credentials(RequestModel):
    # Blank or missing fields leave the stored value unchanged.
    email: Email | None = None
    phone: Phone | None = None
    password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX_LENGTH)] | None = None


class StoreCredentials(Credentials):
    name: Name | None = None


class StoreCreate(AdminForm):
    name: Name
    pickup_address: OptionalAddress = None
    phone: StorePhone = None
    box_limit: BoxLimit | None = None
    hours_text: HoursText = None
    status: StoreStatus = StoreStatus.ACTIVE


class StoreUpdate(AdminForm):
    """Only the keys sent change; a blank or null pickup address, phone or hours clears it."""

    name: Name | None = None
    pickup_address: OptionalAddress = None
    phone: StorePhone = None
    box_limit: BoxLimit | None = None
    hours_text: HoursText = None
    status: StoreStatus | None = None


class StoreRead(ReadModel):
    id: int
    name: str
    status: str
    pickup_address: str | None
    phone: str | None
    box_limit: int | None
    hours_text: str | None
    created_at: datetime


class StoreUserCreate(RequestModel):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    password: Password
    role_in_store: StoreRole = StoreRole.STAFF


class StoreUserAdd(RequestModel):
    """Adds an existing store account to another store."""

    user_id: IdInt
    role_in_store: StoreRole = StoreRole.STAFF


class StoreUserRead(BaseModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    status: str
    role_in_store: str
    created_at: datetime


def store_user_read(user: User, membership: StoreMembership) -> StoreUserRead:
    """A store's user as the admin lists them: the account and its role in that store."""
    return StoreUserRead(
        id=user.id,
        name=user.name,
        email=user.email,
        phone=user.phone,
        status=user.status,
        role_in_store=membership.role_in_store,
        created_at=user.created_at,
    )
