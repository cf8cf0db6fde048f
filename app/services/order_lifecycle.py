"""Order transitions: claim/accept, decline, assign, unassign, status, cancel, redeliver,
return, and the worker's release of accepted orders not picked up in time.

Every transition reads the order, decides, then lands as ONE conditional UPDATE whose WHERE
repeats what the decision was based on (status, courier, version, not deleted). If another
request moved the order in between, nothing is updated and the decision is made again on the
fresh row, so a stale request can never move an order from a state it is no longer in.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app.core.config import DispatchMode, get_settings
from app.core.errors import (
    Conflict,
    CourierOffDuty,
    InvalidInput,
    InvalidTransition,
    NotFound,
    OrderAlreadyTaken,
    ProofRequired,
    ZarizError,
)
from app.db.base import utcnow
from app.db.models import FINAL_STATUSES, EventType, Order, OrderStatus, Role, User, UserStatus
from app.services.auth import Principal
from app.services.capacity import lock_and_check_capacity
from app.services.device_time import checked_occurred_at, window_breaches
from app.services.events import SYSTEM, Actor, OrderState, record_event
from app.services.failure_reasons import resolve_failure
from app.services.orders import scope
from app.services.proof_policy import missing_proofs
from app.services.proofs import outcome_evidence

MAX_ATTEMPTS = 5
# Who holds an undeleted order, read as one Core column (built once): all that refusing a
# losing claim needs, without the ORM's statement building, hydration and identity map.
_orders = Order.__table__
HOLDER = select(_orders.c.courier_id).where(
    _orders.c.id == bindparam("id"), _orders.c.deleted_at.is_(None)
)


@dataclass(frozen=True)
class Change:
    values: dict[str, Any]
    event_type: EventType
    reason: str | None = None
    data: dict[str, Any] | None = None
    capacity_courier_id: int | None = None
    occurred_at: datetime | None = None  # the device's time of the action, checked


Decide = Callable[[Order], Change | None]


# Back to unassigned `new` (a decline, an unassignment, an auto-release): no courier, no stamps
# of the attempt that ended. Copied into each Change, never changed in place.
UNASSIGNED: dict[str, Any] = {
    "status": OrderStatus.NEW,
    "courier_id": None,
    "assigned_at": None,
    "accepted_at": None,
}


def _load(session: Session, order_id: int, principal: Actor | None) -> Order:
    query = select(Order).where(Order.id == order_id, Order.deleted_at.is_(None))
    if isinstance(principal, Principal):
        query = query.where(scope(principal))
    order = session.scalar(query.execution_options(populate_existing=True))
    if order is None:
        raise NotFound("Order not found")
    return order


def _apply(
    session: Session,
    *,
    principal: Actor,
    order_id: int,
    decide: Decide,
    scoped: bool = True,
    precheck: Callable[[], None] | None = None,
) -> Order:
    try:
        if precheck is not None:
            precheck()
        return _attempt(
            session, principal=principal, order_id=order_id, decide=decide, scoped=scoped
        )
    except ZarizError:
        # Most refusals are races lost (409): end the transaction here, in the request's worker
        # thread (releasing a capacity lock at once), so closing the session needs no thread.
        session.rollback()
        raise


def _attempt(
    session: Session,
    *,
    principal: Actor,
    order_id: int,
    decide: Decide,
    scoped: bool,
) -> Order:
    for _ in range(MAX_ATTEMPTS):
        order = _load(session, order_id, principal if scoped else None)
        change = decide(order)
        if change is None:  # already in the asked-for state: a repeat is a no-op, not an error
            return order
        if change.capacity_courier_id is not None:
            lock_and_check_capacity(
                session, courier_id=change.capacity_courier_id, extra_boxes=order.boxes_count
            )
        before = OrderState.of(order)
        same_courier = (
            Order.courier_id.is_(None)
            if before.courier_id is None
            else Order.courier_id == before.courier_id
        )
        # WHERE repeats every precondition the decision read: two couriers cannot both win,
        # and a request decided on a stale row changes nothing.
        updated = session.scalar(
            update(Order)
            .where(
                Order.id == order.id,
                Order.status == before.status,
                same_courier,
                Order.version == order.version,
                Order.deleted_at.is_(None),
            )
            .values(**change.values, version=Order.version + 1, updated_at=utcnow())
            .returning(Order)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        if updated is None:
            continue
        record_event(
            session,
            order=updated,
            before=before,
            type=change.event_type,
            actor=principal,
            reason=change.reason,
            data=change.data,
            occurred_at=change.occurred_at,
        )
        session.commit()
        return updated
    raise Conflict("The order kept changing; try again")


def claim_order(
    session: Session, *, order_id: int, courier: Principal, occurred_at: datetime | None = None
) -> Order:
    """Claim from the open pool, or accept an assignment: both end `accepted` by this courier."""
    me = courier.user.id

    def accept(order: Order) -> Change:
        # The device time is checked only once the claim would land: a taken order is a 409.
        happened = checked_occurred_at(session, order_id=order.id, occurred_at=occurred_at)
        return Change(
            values={
                "status": OrderStatus.ACCEPTED,
                "courier_id": me,
                "accepted_at": happened or utcnow(),
            },
            event_type=EventType.ACCEPTED,
            capacity_courier_id=me,
            occurred_at=happened,
        )

    def decide(order: Order) -> Change | None:
        if order.courier_id == me:
            if order.status == OrderStatus.ACCEPTED:
                return None
            if order.status == OrderStatus.ASSIGNED:
                return accept(order)
            raise InvalidTransition(f"The order is already {order.status}")
        if order.courier_id is not None:
            raise OrderAlreadyTaken("Another courier has taken this order")
        if order.status != OrderStatus.NEW:
            raise InvalidTransition(f"The order is {order.status}")
        if get_settings().dispatch_mode != DispatchMode.OPEN:
            raise NotFound("Order not found")  # in assign mode the pool is invisible to couriers
        return accept(order)

    def refuse_if_taken() -> None:
        # Most claims in a rush lose (a storm: ~90%). Refuse those from one committed column,
        # in this transaction, before reading the whole order or locking the courier, with
        # decide()'s answers: missing or deleted 404, held by another courier 409. Anything
        # else goes on to the full read, decide() and the conditional UPDATE, as before.
        holder = session.connection().execute(HOLDER, {"id": order_id}).first()
        if holder is None:
            raise NotFound("Order not found")
        if holder.courier_id is not None and holder.courier_id != me:
            raise OrderAlreadyTaken("Another courier has taken this order")

    # Unscoped read: an order just taken by someone else must answer 409, not 404.
    return _apply(
        session,
        principal=courier,
        order_id=order_id,
        decide=decide,
        scoped=False,
        precheck=refuse_if_taken,
    )


def decline_order(
    session: Session, *, order_id: int, courier: Principal, occurred_at: datetime | None = None
) -> Order:
    me = courier.user.id

    def decide(order: Order) -> Change | None:
        if order.courier_id == me and order.status in (OrderStatus.ASSIGNED, OrderStatus.ACCEPTED):
            happened = checked_occurred_at(session, order_id=order.id, occurred_at=occurred_at)
            return Change(
                occurred_at=happened,
                values=dict(UNASSIGNED),
                event_type=EventType.DECLINED,
            )
        raise InvalidTransition("Only an assigned or accepted order you hold can be declined")

    return _apply(session, principal=courier, order_id=order_id, decide=decide)


def _active_courier(session: Session, courier_id: int) -> User:
    user = session.get(User, courier_id, populate_existing=True)
    if (
        user is None
        or user.role != Role.COURIER
        or user.deleted_at is not None
        or user.status != UserStatus.ACTIVE
    ):
        raise InvalidInput("courier_id is not an active courier")
    if not user.on_duty:
        raise CourierOffDuty("The courier is off duty; they cannot be given orders")
    return user


def assign_order(session: Session, *, order_id: int, courier_id: int, admin: Principal) -> Order:
    target = _active_courier(session, courier_id)

    def decide(order: Order) -> Change | None:
        if order.status == OrderStatus.ASSIGNED and order.courier_id == target.id:
            return None
        if order.status not in (OrderStatus.NEW, OrderStatus.ASSIGNED, OrderStatus.ACCEPTED):
            raise InvalidTransition(f"A {order.status} order cannot be assigned")
        return Change(
            values={
                "status": OrderStatus.ASSIGNED,
                "courier_id": target.id,
                "assigned_at": utcnow(),
                "accepted_at": None,
            },
            event_type=EventType.ASSIGNED,
        )

    return _apply(session, principal=admin, order_id=order_id, decide=decide)


def unassign_order(session: Session, *, order_id: int, admin: Principal) -> Order:
    def decide(order: Order) -> Change | None:
        if order.status == OrderStatus.NEW and order.courier_id is None:
            return None
        if order.status not in (OrderStatus.ASSIGNED, OrderStatus.ACCEPTED):
            raise InvalidTransition(f"A {order.status} order cannot be unassigned")
        return Change(
            values=dict(UNASSIGNED),
            event_type=EventType.UNASSIGNED,
        )

    return _apply(session, principal=admin, order_id=order_id, decide=decide)


STATUS_FROM = {
    OrderStatus.PICKED_UP: OrderStatus.ACCEPTED,
    OrderStatus.DELIVERED: OrderStatus.PICKED_UP,
    OrderStatus.FAILED: OrderStatus.PICKED_UP,
}
# The column each status a courier reports stamps with its time.
STATUS_STAMP = {
    OrderStatus.PICKED_UP: "picked_up_at",
    OrderStatus.DELIVERED: "delivered_at",
    OrderStatus.FAILED: "failed_at",
}


def set_status(
    session: Session,
    *,
    order_id: int,
    status: OrderStatus,
    note: str | None,
    reason: str | None,
    actor: Principal,
    reason_code: str | None = None,
    recipient_name: str | None = None,
    occurred_at: datetime | None = None,
) -> Order:
    if status not in STATUS_FROM:
        raise InvalidInput("status must be picked_up, delivered or failed")
    if reason_code is not None and status != OrderStatus.FAILED:
        raise InvalidInput("reason_code is given only when an order fails")
    if recipient_name is not None and status != OrderStatus.DELIVERED:
        raise InvalidInput("recipient_name is given only when an order is delivered")
    failure = None
    if status == OrderStatus.FAILED:
        failure = resolve_failure(get_settings(), reason_code=reason_code, reason=reason, note=note)
    evidence = outcome_evidence(session, order_id) if status != OrderStatus.PICKED_UP else None
    now = utcnow()

    def decide(order: Order) -> Change | None:
        if actor.role == Role.COURIER and order.courier_id != actor.user.id:
            raise NotFound("Order not found")
        if order.status == status:
            return None
        if order.status != STATUS_FROM[status]:
            raise InvalidTransition(f"A {order.status} order cannot become {status}")
        happened = checked_occurred_at(session, order_id=order.id, occurred_at=occurred_at)
        # The order's stamp is when it happened: the device's time when the courier sent one.
        stamp = happened or now
        values: dict[str, Any] = {"status": status, STATUS_STAMP[status]: stamp}
        data: dict[str, Any] = {"note": note} if note else {}
        data.update(window_breaches(order, status=status, at=stamp))
        if evidence is not None:
            missing = missing_proofs(
                evidence.policy,
                outcome=status,
                reason_code=failure.code if failure else None,
                uploaded=evidence.kinds,
            )
            if missing:
                raise ProofRequired(f"Upload the missing proof first: {', '.join(missing)}")
            if evidence.proof_ids:
                data["proof_ids"] = list(evidence.proof_ids)
        if failure is not None:
            values["failure_reason"] = failure.text
            values["failure_reason_code"] = failure.code
            data["reason_code"] = failure.code
        if recipient_name is not None:
            values["recipient_name"] = recipient_name
            data["recipient_name"] = recipient_name
        return Change(
            values=values,
            event_type=EventType.STATUS_CHANGED,
            reason=failure.text if failure else note,
            data=data or None,
            occurred_at=happened,
        )

    return _apply(session, principal=actor, order_id=order_id, decide=decide)


def cancel_order(session: Session, *, order_id: int, reason: str | None, actor: Principal) -> Order:
    def decide(order: Order) -> Change | None:
        if order.status == OrderStatus.CANCELED:
            return None
        if order.status in FINAL_STATUSES:
            raise InvalidTransition(f"A {order.status} order cannot be canceled")
        if actor.role == Role.STORE and order.status not in (OrderStatus.NEW, OrderStatus.ASSIGNED):
            raise InvalidTransition(
                "A store can cancel only while the order is new or assigned; ask dispatch"
            )
        return Change(
            values={
                "status": OrderStatus.CANCELED,
                "canceled_at": utcnow(),
                "cancel_reason": reason,
            },
            event_type=EventType.STATUS_CHANGED,
            reason=reason,
        )

    return _apply(session, principal=actor, order_id=order_id, decide=decide)


def redeliver_order(
    session: Session, *, order_id: int, courier_id: int | None, actor: Principal
) -> Order:
    """A failed order goes out again: to the pool/unassigned, or assigned to a courier.

    The failure fields are cleared so the order reads as a fresh attempt; the event keeps them.
    """
    target = _active_courier(session, courier_id) if courier_id is not None else None

    def decide(order: Order) -> Change | None:
        if order.status != OrderStatus.FAILED:
            raise InvalidTransition(
                f"Only a failed order can be redelivered; this one is {order.status}"
            )
        if order.returned_at is not None:
            raise InvalidTransition("The order was returned to the store; it cannot be redelivered")
        failure = {
            "failure_reason_code": order.failure_reason_code,
            "failure_reason": order.failure_reason,
            "failed_at": order.failed_at.isoformat() if order.failed_at else None,
            "recipient_name": order.recipient_name,
        }
        values: dict[str, Any] = {
            "status": OrderStatus.NEW if target is None else OrderStatus.ASSIGNED,
            "courier_id": None if target is None else target.id,
            "assigned_at": None if target is None else utcnow(),
            "accepted_at": None,
            "picked_up_at": None,
            "failed_at": None,
            "failure_reason": None,
            "failure_reason_code": None,
            "recipient_name": None,
        }
        return Change(
            values=values,
            event_type=EventType.REDELIVERED,
            reason=order.failure_reason,
            data={"failure": {k: v for k, v in failure.items() if v is not None}},
            capacity_courier_id=None if target is None else target.id,
        )

    return _apply(session, principal=actor, order_id=order_id, decide=decide)


def return_order(session: Session, *, order_id: int, actor: Principal) -> Order:
    """A failed order handed back to its store: it stays failed, stamped `returned_at`."""

    def decide(order: Order) -> Change | None:
        if order.status != OrderStatus.FAILED:
            raise InvalidTransition(
                f"Only a failed order can be returned; this one is {order.status}"
            )
        if order.returned_at is not None:
            raise InvalidTransition("The order was already returned to the store")
        return Change(
            values={"returned_at": utcnow()},
            event_type=EventType.RETURNED,
            data={"failure_reason_code": order.failure_reason_code}
            if order.failure_reason_code
            else None,
        )

    return _apply(session, principal=actor, order_id=order_id, decide=decide)


RELEASE_REASON = "not_picked_up_in_time"


def release_order(session: Session, *, order_id: int, accepted_before: datetime) -> bool:
    """Returns the accepted order to the pool/unassigned if it was accepted before the cutoff.

    True if this call released it; False if it was picked up, declined or re-accepted first
    (the conditional UPDATE of _attempt: a pickup racing the release, exactly one wins).
    """
    released = False

    def decide(order: Order) -> Change | None:
        nonlocal released
        stale = (
            order.status == OrderStatus.ACCEPTED
            and order.accepted_at is not None
            and order.accepted_at < accepted_before
        )
        # The WHERE of _attempt repeats status, courier and version: a pickup or decline that
        # lands first makes this UPDATE match nothing, and the re-read finds nothing to release.
        released = stale
        if not stale or order.accepted_at is None:
            return None
        return Change(
            values=dict(UNASSIGNED),
            event_type=EventType.RELEASED,
            reason=RELEASE_REASON,
            data={"reason_code": RELEASE_REASON, "accepted_at": order.accepted_at.isoformat()},
        )

    try:
        _apply(session, principal=SYSTEM, order_id=order_id, decide=decide, scoped=False)
    except (NotFound, Conflict):
        return False  # deleted meanwhile, or it kept changing: the next sweep looks again
    return released


def release_stale_orders(
    session: Session, *, after_minutes: int, now: datetime | None = None
) -> list[int]:
    """The ids of the orders accepted over after_minutes ago that this sweep released (0: off)."""
    if after_minutes <= 0:
        return []
    cutoff = (now or utcnow()) - timedelta(minutes=after_minutes)
    candidates = list(
        session.scalars(
            select(Order.id)
            .where(
                Order.status == OrderStatus.ACCEPTED,
                Order.accepted_at < cutoff,
                Order.deleted_at.is_(None),
            )
            .order_by(Order.id)
        )
    )
    session.rollback()  # end the read; each release is its own transaction
    return [i for i in candidates if release_order(session, order_id=i, accepted_before=cutoff)]
