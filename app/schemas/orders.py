"""Order bodies: create, edit, actions, and the OrderRead clients depend on."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
)

from app.db.base import utcnow
from app.schemas.common import MAX_ID, PHONE_CHARS, BlankIsNone, IdInt, ReadModel, RequestModel
from app.schemas.windows import WindowEnd, is_late, was_delivered_late

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
PhoneText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=32, pattern=rf"^{PHONE_CHARS}$"
    ),
]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# The iOS app sends "" for a pickup address left empty; the store's (or none) applies then.
OptionalAddress = Annotated[Address | None, BlankIsNone]
Boxes = Annotated[int, Field(ge=1, le=200)]


class OrderCreate(RequestModel):
    model_config = ConfigDict(extra="ignore")

    recipient_first_name: Text100
    recipient_last_name: Text100
    phone: PhoneText
    street: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    building_no: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)
    ]
    floor: Short | None = None
    apartment: Short | None = None
    notes: Notes | None = None
    pickup_address: OptionalAddress = None
    delivery_address: OptionalAddress = None
    boxes_count: Boxes = 1
    store_id: IdInt | None = None
    pickup_after: WindowEnd = None
    pickup_before: WindowEnd = None
    deliver_after: WindowEnd = None
    deliver_before: WindowEnd = None


class OrderUpdate(RequestModel):
    """PATCH body; read-only keys a client echoes back (id, status, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    recipient_first_name: Text100 | None = None
    recipient_last_name: Text100 | None = None
    phone: PhoneText | None = None
    street: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    building_no: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = None
    floor: Short | None = None
    apartment: Short | None = None
    notes: Notes | None = None
    # Blank means "unchanged", like null: a client echoing an order without one sends "".
    pickup_address: OptionalAddress = None
    delivery_address: OptionalAddress = None
    boxes_count: Boxes | None = None
    # Absent: unchanged; "" or null: cleared.
    pickup_after: WindowEnd = None
    pickup_before: WindowEnd = None
    deliver_after: WindowEnd = None
    deliver_before: WindowEnd = None
    version: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None


class AssignBody(RequestModel):
    courier_id: IdInt


# When a courier's action happened on the device (offline, synced later); bounded by the service.
OccurredAt = Annotated[AwareDatetime | None, BlankIsNone]


class CourierActionBody(RequestModel):
    """Optional body of claim/accept and decline."""

    occurred_at: OccurredAt = None


class StatusBody(RequestModel):
    status: Literal["picked_up", "delivered", "failed"]
    occurred_at: OccurredAt = None
    note: Notes | None = None
    # Free text, as older clients send it; `reason_code` is the structured failure reason.
    reason: Reason | None = None
    reason_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    recipient_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None


class RedeliverBody(RequestModel):
    # None (or no body): back to the pool in open mode, to unassigned `new` in assign mode.
    courier_id: IdInt | None = None


class CancelBody(RequestModel):
    # The web admin sends {"reason": ""} when its prompt is left empty: no reason, stored as null.
    reason: Annotated[Reason | None, BlankIsNone] = None


class OrderRead(ReadModel):
    id: int
    store_id: int
    store_name: str | None = None
    courier_id: int | None
    courier_name: str | None = None
    status: str
    pickup_address: str | None
    delivery_address: str
    recipient_first_name: str
    recipient_last_name: str
    phone: str
    street: str
    building_no: str
    floor: str | None
    apartment: str | None
    notes: str | None
    boxes_count: int
    boxes_multiplier: int
    price_total: int
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None
    accepted_at: datetime | None
    picked_up_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    canceled_at: datetime | None
    cancel_reason: str | None
    failure_reason: str | None
    failure_reason_code: str | None = None
    recipient_name: str | None = None
    returned_at: datetime | None = None
    pickup_after: datetime | None = None
    pickup_before: datetime | None = None
    deliver_after: datetime | None = None
    deliver_before: datetime | None = None
    version: int

    # Computed from the clock when the order is rendered, never stored.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def late(self) -> bool:
        """Past deliver_before and not delivered, failed or canceled."""
        return is_late(self.status, self.deliver_before, now=utcnow())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delivered_late(self) -> bool:
        """Delivered, but after deliver_before."""
        return was_delivered_late(self.status, self.deliver_before, self.delivered_at)


class OrderDeleted(BaseModel):
    id: int
    deleted: bool = True


class OrderEventRead(ReadModel):
    id: int
    order_id: int
    type: str
    from_status: str | None
    to_status: str | None
    actor_id: int | None
    actor_role: str | None
    courier_id: int | None
    reason: str | None
    data: dict[str, Any] | None
    created_at: datetime
    # When it happened on the courier's device, if the courier sent it (offline actions).
    device_occurred_at: datetime | None = Field(
        default=None, validation_alias=AliasChoices("device_occurred_at", "occurred_at")
    )


class CourierLoad(BaseModel):
    id: int
    name: str
    status: str
    on_duty: bool = True
    capacity_boxes: int
    load_boxes: int
    available_boxes: int
    active_orders: int
