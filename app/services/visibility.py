"""Who sees an order and an order event: one rule for the lists, the SSE stream, the pull feed
and push notifications.

Admins see every event; store users the events of their stores' orders; a courier the events of
orders they hold or held, and, in open dispatch mode, changes to the pool of unassigned orders,
without recipient details.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, or_, select, true
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, get_settings
from app.db.models import (
    Order,
    OrderEvent,
    OrderStatus,
    Role,
    Store,
    StoreMembership,
    StoreStatus,
    User,
    UserStatus,
)


@dataclass(frozen=True)
class Viewer:
    user_id: int
    role: Role
    store_ids: tuple[int, ...] = ()


class ScopedEvent(Protocol):
    """What the Python rule reads of an event: an OrderEvent, or a row of its columns."""

    @property
    def store_id(self) -> int: ...
    @property
    def courier_id(self) -> int | None: ...
    @property
    def prev_courier_id(self) -> int | None: ...
    @property
    def pool_change(self) -> bool: ...


def _open_mode() -> bool:
    return get_settings().dispatch_mode == DispatchMode.OPEN


def event_scope(viewer: Viewer, *, bound: bool = False) -> ColumnElement[bool]:
    """SQL condition on order_events for the events the viewer may see.

    `bound`: the viewer's user id and store ids as the bound parameters `scope_user_id` and
    `scope_store_ids` (expanding), to be given at execution, so that one statement serves
    every viewer of the same `scope_shape`.
    """
    user_id: Any = bindparam("scope_user_id") if bound else viewer.user_id
    if viewer.role == Role.ADMIN:
        return true()
    if viewer.role == Role.STORE:
        if not viewer.store_ids:
            return false()
        stores: Any = bindparam("scope_store_ids", expanding=True) if bound else viewer.store_ids
        return OrderEvent.store_id.in_(stores)
    if viewer.role == Role.COURIER:
        mine = or_(OrderEvent.courier_id == user_id, OrderEvent.prev_courier_id == user_id)
        if _open_mode():
            return or_(mine, OrderEvent.pool_change.is_(True))
        return mine
    return false()


def order_scope(viewer: Viewer, *, bound: bool = False) -> ColumnElement[bool]:
    """SQL condition on orders for the undeleted orders the viewer may see: admin all, store
    users their stores', couriers their own plus, in open mode, the pool of unassigned new
    orders.

    `bound`: the viewer's ids as the same bound parameters as event_scope's (scope_params), so
    that one statement serves every viewer of the same `scope_shape`.
    """
    undeleted = Order.deleted_at.is_(None)
    if viewer.role == Role.ADMIN:
        return and_(undeleted, true())
    if viewer.role == Role.STORE:
        if not viewer.store_ids:
            return false()
        stores: Any = bindparam("scope_store_ids", expanding=True) if bound else viewer.store_ids
        return and_(undeleted, Order.store_id.in_(stores))
    if viewer.role == Role.COURIER:
        user_id: Any = bindparam("scope_user_id") if bound else viewer.user_id
        mine = Order.courier_id == user_id
        if _open_mode():
            pool = and_(Order.status == OrderStatus.NEW, Order.courier_id.is_(None))
            return and_(undeleted, or_(mine, pool))
        return and_(undeleted, mine)
    return false()


def scope_shape(viewer: Viewer) -> tuple[Role, bool, bool]:
    """What decides the form of event_scope(viewer, bound=True) and order_scope(viewer,
    bound=True); the rest is their parameters."""
    return viewer.role, bool(viewer.store_ids), _open_mode()


def scope_params(viewer: Viewer) -> dict[str, Any]:
    """The parameters of event_scope(viewer, bound=True) and order_scope(viewer, bound=True)."""
    if viewer.role == Role.COURIER:
        return {"scope_user_id": viewer.user_id}
    if viewer.role == Role.STORE and viewer.store_ids:
        return {"scope_store_ids": list(viewer.store_ids)}
    return {}


def can_see(viewer: Viewer, event: ScopedEvent) -> bool:
    """The Python twin of event_scope, for events already in hand (live fan-out)."""
    if viewer.role == Role.ADMIN:
        return True
    if viewer.role == Role.STORE:
        return event.store_id in viewer.store_ids
    if viewer.role == Role.COURIER:
        return sees_details(viewer, event) or (bool(event.pool_change) and _open_mode())
    return False


def sees_details(viewer: Viewer, event: ScopedEvent) -> bool:
    """Whether the viewer may see the order itself (recipient, phone, address) with the event."""
    if viewer.role == Role.COURIER:
        return viewer.user_id in (event.courier_id, event.prev_courier_id)
    return viewer.role in (Role.ADMIN, Role.STORE) and can_see(viewer, event)


def audience_query(event: OrderEvent) -> Select[int]:
    """SELECT of the ids of the active users who see the event, except the one who caused it.

    A query, not a list: a pool change is seen by every courier, and binding thousands of ids
    into a follow-up IN (...) cost more CPU than the rest of a claim together.
    """
    eligible = and_(User.status == UserStatus.ACTIVE, User.deleted_at.is_(None))
    conditions = [
        User.role == Role.ADMIN,
        # A suspended or offboarded store's users no longer hear of its orders.
        User.id.in_(
            select(StoreMembership.user_id)
            .join(Store, Store.id == StoreMembership.store_id)
            .where(
                StoreMembership.store_id == event.store_id,
                Store.status == StoreStatus.ACTIVE,
                Store.deleted_at.is_(None),
            )
        ),
        User.id.in_([i for i in (event.courier_id, event.prev_courier_id) if i is not None]),
    ]
    if event.pool_change and _open_mode():
        # Off-duty couriers hear of their own orders (above), not of the pool.
        conditions.append(and_(User.role == Role.COURIER, User.on_duty.is_(True)))
    query = select(User.id).where(eligible, or_(*conditions))
    if event.actor_id is not None:
        query = query.where(User.id != event.actor_id)
    return query


def audience(session: Session, event: OrderEvent) -> set[int]:
    """Ids of the active users who see the event, except the one who caused it (for push)."""
    return set(session.scalars(audience_query(event)))
