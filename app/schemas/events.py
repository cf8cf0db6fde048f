"""The live-update message (SSE `data:` and the pull feed) and the feed page."""

from datetime import datetime

from pydantic import BaseModel

from app.schemas.common import ReadModel
from app.schemas.orders import OrderRead


class OrderTop(ReadModel):
    """The keys of the order copied to the top of every message, as OrderRead has them."""

    pickup_address: str | None
    boxes_count: int
    created_at: datetime


class EventMessage(BaseModel):
    type: str
    event_id: int
    order_id: int
    store_id: int
    courier_id: int | None
    status: str | None
    occurred_at: datetime
    # admin, store, courier, or system (the worker's auto-release); absent when unknown.
    actor_role: str | None = None
    # The order's, at the top level where the web admin reads them (none of them personal).
    pickup_address: str | None = None
    boxes_count: int | None = None
    created_at: datetime | None = None
    # The event's own facts, where it has them: the proofs it added or counted, why it failed.
    proof_ids: list[int] | None = None
    reason_code: str | None = None
    # Window breaches the event recorded: a delivery (or failure) after deliver_before, a
    # pickup after pickup_before, and by how many whole minutes.
    late: bool | None = None
    pickup_late: bool | None = None
    minutes_late: int | None = None
    # `occurred_at` above is the server's time of the event (DESIGN §6); this is when it
    # happened on the courier's device, where an offline courier sent that.
    device_occurred_at: datetime | None = None
    # Left out (not null) when the viewer may not see the order: a courier watching the pool.
    order: OrderRead | None = None


class EventFeed(BaseModel):
    events: list[EventMessage]
    last_event_id: int
