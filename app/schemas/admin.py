"""Bodies of the admin endpoints: couriers, stores and store staff."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.db.models import StoreRole, StoreStatus, UserStatus
from app.schemas.common import Email, IdInt, Name, Password, Phone, ReadModel, RequestModel

Capacity = Annotated[int, Field(ge=1, le=200)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class CourierCreate(RequestModel):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    password: Password
    capacity_boxes: Capacity | None = None


class CourierUpdate(RequestModel):
    name: Name | None = None
    capacity_boxes: Capacity | None = None


class CourierRead(ReadModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    status: str
    capacity_boxes: int
    created_at: datetime
    last_login_at: datetime | None


class UserStatusChange(RequestModel):
    status: UserStatus


class StoreStatusChange(RequestModel):
    status: StoreStatus


class Credentials(RequestModel):
    # Blank or missing fields leave the stored value unchanged.
    email: Email | None = None
    phone: Phone | None = None
    password: Annotated[str, StringConstraints(max_length=256)] | None = None


class StoreCredentials(Credentials):
    name: Name | None = None


class StoreCreate(RequestModel):
    name: Name
    pickup_address: Address
    phone: Phone | None = None
    box_limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    hours_text: Annotated[str, StringConstraints(max_length=200)] | None = None


class StoreUpdate(RequestModel):
    name: Name | None = None
    pickup_address: Address | None = None
    phone: Phone | None = None
    box_limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    hours_text: Annotated[str, StringConstraints(max_length=200)] | None = None


class StoreRead(ReadModel):
    id: int
    name: str
    status: str
    pickup_address: str
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
