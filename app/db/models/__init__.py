"""Every table, imported so that Alembic and the mappers see them all."""

from app.db.models.device import ApnsEnvironment, Device, Platform
from app.db.models.idempotency_key import IdempotencyKey
from app.db.models.order import FINAL_STATUSES, LOAD_STATUSES, Order, OrderStatus
from app.db.models.order_event import ActorRole, EventType, OrderEvent
from app.db.models.order_proof import OrderProof, ProofKind, ProofStage
from app.db.models.push_job import PushJob, PushStatus
from app.db.models.store import Store, StoreMembership, StoreRole, StoreStatus
from app.db.models.user import Role, User, UserStatus
from app.db.models.user_session import UserSession

__all__ = [
    "FINAL_STATUSES",
    "LOAD_STATUSES",
    "ActorRole",
    "ApnsEnvironment",
    "Device",
    "EventType",
    "IdempotencyKey",
    "Order",
    "OrderEvent",
    "OrderProof",
    "OrderStatus",
    "Platform",
    "ProofKind",
    "ProofStage",
    "PushJob",
    "PushStatus",
    "Role",
    "Store",
    "StoreMembership",
    "StoreRole",
    "StoreStatus",
    "User",
    "UserSession",
    "UserStatus",
]
