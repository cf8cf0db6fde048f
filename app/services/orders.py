"""Orders as stores and admins see them: scope, create, list, read, edit, delete, timeline."""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.core.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    StoreInactive,
    VersionConflict,
)
from app.db.base import utcnow
from app.db.models import (
    FINAL_STATUSES,
    EventType,
    IdempotencyKey,
    Order,
    OrderEvent,
    OrderStatus,
    Role,
    Store,
    StoreStatus,
)
from app.db.models.order import digits_of
from app.schemas.common import MAX_ID
from app.schemas.orders import OrderCreate, OrderRead, OrderUpdate
from app.schemas.windows import WINDOW_FIELDS, check_windows
from app.services.auth import Principal
from app.services.capacity import lock_and_check_capacity
from app.services.events import OrderState, record_event
from app.services.order_views import reads_from_rows, render_rows, rendered, rendered_params
from app.services.pricing import price_for
from app.services.visibility import Viewer, order_scope, scope_params, scope_shape

EDITABLE_FIELDS = (
    "recipient_first_name",
    "recipient_last_name",
    "phone",
    "street",
    "building_no",
    "floor",
    "apartment",
    "notes",
    "pickup_address",
    "delivery_address",
    "boxes_count",
    *WINDOW_FIELDS,
)


def scope(principal: Principal) -> ColumnElement[bool]:
    """The undeleted orders the caller may see (visibility.order_scope, the one rule)."""
    return order_scope(viewer_of(principal))


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(user_id=principal.user.id, role=principal.role, store_ids=principal.store_ids)


def get_order(session: Session, *, principal: Principal, order_id: int) -> Order:
    order = session.scalar(select(Order).where(Order.id == order_id, scope(principal)))
    if order is None:
        raise NotFound("Order not found")
    return order


def default_delivery_address(
    street: str, building_no: str, floor: str | None, apt: str | None
) -> str:
    parts = [f"{street} {building_no}".strip()]
    parts += [p for p in (floor, apt) if p]
    return ", ".join(parts)


def _store_for_create(session: Session, principal: Principal, store_id: int | None) -> Store:
    if principal.role == Role.STORE:
        if store_id is None:
            if len(principal.store_ids) != 1:
                raise InvalidInput("store_id is required for a user of several stores")
            store_id = principal.store_ids[0]
        elif store_id not in principal.store_ids:
            raise NotFound("Store not found")
    elif store_id is None:
        raise InvalidInput("store_id is required")
    store = session.get(Store, store_id)
    if store is None or store.deleted_at is not None:
        raise NotFound("Store not found")
    if store.status != StoreStatus.ACTIVE:
        raise StoreInactive(f"Store is {store.status} and cannot create orders")
    return store


def create_order(
    session: Session,
    *,
    principal: Principal,
    data: OrderCreate,
    idempotency_key: IdempotencyKey | None = None,
) -> Order:
    windows = {name: getattr(data, name) for name in WINDOW_FIELDS}
    check_windows(windows, changed=WINDOW_FIELDS, now=utcnow())
    store = _store_for_create(session, principal, data.store_id)
    multiplier, total = price_for(data.boxes_count)
    order = Order(
        store_id=store.id,
        status=OrderStatus.NEW,
        pickup_address=data.pickup_address or store.pickup_address,
        delivery_address=data.delivery_address
        or default_delivery_address(data.street, data.building_no, data.floor, data.apartment),
        recipient_first_name=data.recipient_first_name,
        recipient_last_name=data.recipient_last_name,
        phone=data.phone,
        street=data.street,
        building_no=data.building_no,
        floor=data.floor,
        apartment=data.apartment,
        notes=data.notes,
        boxes_count=data.boxes_count,
        boxes_multiplier=multiplier,
        price_total=total,
        created_by_id=principal.user.id,
        **windows,
    )
    session.add(order)
    session.flush()
    record_event(
        session,
        order=order,
        before=None,
        type=EventType.CREATED,
        actor=principal,
    )
    if idempotency_key is not None:
        idempotency_key.order_id = order.id  # the key commits with the order it produced
    session.commit()
    return order


@dataclass(frozen=True)
class OrderFilters:
    statuses: tuple[str, ...] = ()
    store_id: int | None = None
    courier_id: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive
    q: str | None = None
    # Orders that ended (delivered, failed, canceled) before this are left out; active ones stay.
    finished_since: datetime | None = None
    due_before: datetime | None = None  # deliver_before <= this (orders without one left out)
    by_due: bool = False  # sort by deliver_before (none last), then id; else newest first
    # The id range the dates allow (with_id_bounds): exclusive bounds, set by the service.
    id_after: int | None = None
    id_before: int | None = None


@dataclass(frozen=True)
class DueCursor:
    """Where a sort=due page ended: the last row's deliver_before (None: among the undated)."""

    deliver_before: datetime | None
    id: int

    def encode(self) -> str:
        # UTC with a Z: no "+" for a client to forget to escape in a query string.
        stamp = (
            self.deliver_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if self.deliver_before
            else ""
        )
        return f"due~{stamp}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> "DueCursor":
        try:
            tag, stamp, id_ = text.split("~")
            moment = datetime.fromisoformat(stamp) if stamp else None
            if tag != "due" or (moment is not None and moment.tzinfo is None):
                raise ValueError(text)
            return cls(deliver_before=moment, id=int(id_))
        except ValueError as exc:
            raise InvalidInput("cursor is not a cursor this list gave out") from exc


Cursor = int | DueCursor


# A search of digits and the separators phones are typed with is a phone search.
PHONE_QUERY = re.compile(r"[0-9+\-() ./]+")
# Ids grow with created_at, up to the skew between taking an order's timestamp and its id (the
# INSERT of one transaction overtaking another's): a date bound becomes an id bound with this
# much slack, so the list walks only the ids of the range (an old range read the whole newer
# part of the table before).
CLOCK_SLACK = timedelta(hours=1)


def with_id_bounds(session: Session | Connection, filters: OrderFilters) -> OrderFilters:
    """The filters with the id range their dates allow: two index lookups, sent first so that
    the list's plan sees real numbers (as subqueries, the planner guessed 40 rows and sorted
    every row of the range instead of walking the primary key to the page's end)."""
    if filters.created_from is None and filters.created_to is None:
        return filters
    after = before = None
    if filters.created_from is not None:
        after = session.scalar(_last_id_before(filters.created_from - CLOCK_SLACK)) or 0
    if filters.created_to is not None:
        before = session.scalar(_first_id_from(filters.created_to + CLOCK_SLACK)) or MAX_ID
    return replace(filters, id_after=after, id_before=before)


def _first_id_from(moment: datetime) -> Select[int]:
    """The id of the first order created at or after `moment` (orders_created_at_idx): with
    the skew under CLOCK_SLACK, every order created before `moment - CLOCK_SLACK` has a
    smaller id."""
    return select(Order.id).where(Order.created_at >= moment).order_by(Order.created_at).limit(1)


def _last_id_before(moment: datetime) -> Select[int]:
    """The id of the last order created before `moment`: every order created after
    `moment + CLOCK_SLACK` has a greater id."""
    return (
        select(Order.id).where(Order.created_at < moment).order_by(Order.created_at.desc()).limit(1)
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(principal: Principal, filters: OrderFilters) -> Select[Order]:
    query = select(Order).where(scope(principal))
    if filters.statuses:
        query = query.where(Order.status.in_(filters.statuses))
    if filters.store_id is not None:
        query = query.where(Order.store_id == filters.store_id)
    if filters.courier_id is not None:
        query = query.where(Order.courier_id == filters.courier_id)
    if filters.created_from is not None:
        query = query.where(Order.created_at >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(Order.created_at < filters.created_to)
    if filters.due_before is not None:
        query = query.where(Order.deliver_before <= filters.due_before)
    if filters.id_after is not None:
        query = query.where(Order.id > filters.id_after)
    if filters.id_before is not None:
        query = query.where(Order.id < filters.id_before)
    if filters.finished_since is not None:
        finished_at = func.coalesce(Order.delivered_at, Order.failed_at, Order.canceled_at)
        query = query.where(
            or_(Order.status.not_in(FINAL_STATUSES), finished_at >= filters.finished_since)
        )
    if filters.q and PHONE_QUERY.fullmatch(filters.q) and len(digits_of(filters.q)) >= 3:
        # Only a phone can match digits and separators: one indexable term (trigram on Postgres).
        query = query.where(Order.phone_digits.like(f"%{digits_of(filters.q)}%"))
    elif filters.q:
        pattern = f"%{_escape_like(filters.q.lower())}%"
        digits = digits_of(filters.q)
        terms = [
            func.lower(Order.recipient_first_name).like(pattern, escape="\\"),
            func.lower(Order.recipient_last_name).like(pattern, escape="\\"),
            func.lower(Order.recipient_first_name + " " + Order.recipient_last_name).like(
                pattern, escape="\\"
            ),
            Order.phone.like(pattern, escape="\\"),
        ]
        if len(digits) >= 3:
            # Phones are stored as typed; match the digits whatever the separators.
            terms.append(Order.phone_digits.like(f"%{digits}%"))
        query = query.where(or_(*terms))
    return query


def list_orders(
    session: Session,
    *,
    principal: Principal,
    filters: OrderFilters,
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[OrderRead], Cursor | None]:
    """One page as OrderReads (the console's board, the CSV export); see _page."""
    rows, next_cursor = _page(
        session, principal=principal, filters=filters, limit=limit, cursor=cursor
    )
    return reads_from_rows(rows), next_cursor


def list_orders_json(
    session: Session,
    *,
    principal: Principal,
    filters: OrderFilters,
    limit: int,
    cursor: Cursor | None,
) -> tuple[bytes, Cursor | None]:
    """One page as the bytes of its JSON array of OrderReads (GET /v1/orders): each row is
    dumped once, never validated into a model (the per-row cost of the hot path)."""
    rows, next_cursor = _page(
        session, principal=principal, filters=filters, limit=limit, cursor=cursor
    )
    return render_rows(rows), next_cursor


def _page(
    session: Session,
    *,
    principal: Principal,
    filters: OrderFilters,
    limit: int,
    cursor: Cursor | None,
) -> tuple[Sequence[Row[Any]], Cursor | None]:
    """Newest first by id (keyset): rows inserted while paging never shift later pages.

    With `by_due`, by (deliver_before, id) with the undated last, and the cursor is the last
    row's pair: keyset too, so paging stays exact while orders are added or edited elsewhere.

    One query: the page and its store and courier names together, as the columns of
    OrderRead (rendered()). The named exception to "services return ORM objects, routes render
    them with *_read helpers": rows never become Order objects, because this is the hot path.
    """
    if filters == NO_FILTERS and not isinstance(cursor, DueCursor):
        # The default list (a courier's screen, a store's dashboard): one statement per scope
        # shape, the caller's ids, the cursor, the limit and the clock as its parameters.
        viewer = viewer_of(principal)
        statement = _default_page(scope_shape(viewer), cursor is not None)
        params: dict[str, Any] = {
            **scope_params(viewer),
            **rendered_params(utcnow()),
            "page_limit": limit + 1,
        }
        if cursor is not None:
            params["page_cursor"] = cursor
        return _fetch(session, statement, params, limit=limit, by_due=False)
    query = filtered(principal, with_id_bounds(session, filters))
    if filters.by_due:
        if isinstance(cursor, int):
            raise InvalidInput("cursor is not a cursor of a sort=due list")
        if cursor is not None:
            query = query.where(_after_due(cursor))
        # Undated last on both databases (Postgres's ASC default already; SQLite's needs saying).
        order_by = [Order.deliver_before.asc().nulls_last(), Order.id]
    else:
        if isinstance(cursor, DueCursor):
            raise InvalidInput("cursor is a sort=due cursor; send sort=due with it")
        if cursor is not None:
            query = query.where(Order.id < cursor)
        order_by = [Order.id.desc()]
    statement = rendered(query).order_by(*order_by).limit(limit + 1)
    return _fetch(session, statement, rendered_params(utcnow()), limit=limit, by_due=filters.by_due)


NO_FILTERS = OrderFilters()


@functools.cache
def _default_page(shape: tuple[Role, bool, bool], after_cursor: bool) -> Select[Any]:
    """The unfiltered newest-first page for every caller of this scope shape, built once: the
    same SELECT as filtered(principal, NO_FILTERS) gives, with the caller's ids, the cursor and
    the limit as bound parameters. Building it per request and SQLAlchemy's cache key for it
    were ~15% of a courier's page."""
    role, has_stores, _open_mode = shape  # order_scope reads the dispatch mode itself
    like = Viewer(user_id=0, role=role, store_ids=(0,) if has_stores else ())
    query = select(Order).where(order_scope(like, bound=True))
    if after_cursor:
        query = query.where(Order.id < bindparam("page_cursor", type_=Integer))
    return rendered(query).order_by(Order.id.desc()).limit(bindparam("page_limit", type_=Integer))


def _fetch(
    session: Session, statement: Select[Any], params: dict[str, Any], *, limit: int, by_due: bool
) -> tuple[Sequence[Row[Any]], Cursor | None]:
    """The page of `statement` (which asks for limit + 1 rows) and the cursor after it."""
    # On the session's connection, as Core: the rows are plain columns, so the ORM's result
    # handling (per-row processing for entities there are none of) is skipped.
    rows = session.connection().execute(statement, params).all()
    # End the read here, in the request's worker thread: the connection goes back to the pool
    # now, and closing the session afterwards needs no thread of its own.
    session.commit()
    next_cursor: Cursor | None = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = DueCursor(last.deliver_before, last.id) if by_due else last.id
    return rows[:limit], next_cursor


def _after_due(cursor: DueCursor) -> ColumnElement[bool]:
    if cursor.deliver_before is None:
        return and_(Order.deliver_before.is_(None), Order.id > cursor.id)
    return or_(
        Order.deliver_before > cursor.deliver_before,
        and_(Order.deliver_before == cursor.deliver_before, Order.id > cursor.id),
        Order.deliver_before.is_(None),
    )


def timeline(session: Session, *, principal: Principal, order_id: int) -> Sequence[OrderEvent]:
    order = get_order(session, principal=principal, order_id=order_id)
    return session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    ).all()


def _check_may_edit(principal: Principal, order: Order) -> None:
    if order.status in FINAL_STATUSES:
        raise InvalidTransition(f"A {order.status} order cannot be edited")
    if principal.role == Role.STORE and order.status != OrderStatus.NEW:
        raise InvalidTransition("A store can edit its order only while it is new")


def update_order(
    session: Session, *, principal: Principal, order_id: int, data: OrderUpdate
) -> Order:
    order = get_order(session, principal=principal, order_id=order_id)
    _check_may_edit(principal, order)
    if data.version is not None and data.version != order.version:
        raise VersionConflict(f"Order is at version {order.version}, not {data.version}")
    given = data.model_dump(exclude_unset=True, include=set(EDITABLE_FIELDS))
    required = {
        "recipient_first_name",
        "recipient_last_name",
        "phone",
        "street",
        "building_no",
        "pickup_address",
        "delivery_address",
        "boxes_count",
    }
    changes = {k: v for k, v in given.items() if not (v is None and k in required)}
    changes = {k: v for k, v in changes.items() if getattr(order, k) != v}
    if not changes:
        return order
    windows_changed = [name for name in WINDOW_FIELDS if name in changes]
    if windows_changed:
        # Checked against the stored ends: a new deadline must still fit the pickup window.
        merged = {name: changes.get(name, getattr(order, name)) for name in WINDOW_FIELDS}
        check_windows(merged, changed=windows_changed, now=utcnow())
    if "boxes_count" in changes:
        changes["boxes_multiplier"], changes["price_total"] = price_for(changes["boxes_count"])
        grows = changes["boxes_count"] > order.boxes_count
        if (
            grows
            and order.courier_id is not None
            and order.status
            in (
                OrderStatus.ACCEPTED,
                OrderStatus.PICKED_UP,
            )
        ):
            lock_and_check_capacity(
                session,
                courier_id=order.courier_id,
                extra_boxes=changes["boxes_count"] - order.boxes_count,
                taking=False,
            )
    previous = {k: getattr(order, k) for k in changes}
    # A bulk UPDATE skips the model's hook: the searchable digits follow the phone here.
    digits = {"phone_digits": digits_of(changes["phone"])} if "phone" in changes else {}
    before = OrderState.of(order)
    # WHERE repeats version and status: an edit based on a stale read can never land.
    updated = session.scalar(
        update(Order)
        .where(
            Order.id == order.id,
            Order.version == order.version,
            Order.status == order.status,
            Order.deleted_at.is_(None),
        )
        .values(**changes, **digits, version=Order.version + 1, updated_at=utcnow())
        .returning(Order)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    if updated is None:
        raise VersionConflict("Order changed while it was being edited; read it again")
    record_event(
        session,
        order=updated,
        before=before,
        type=EventType.UPDATED,
        actor=principal,
        data={
            "changed": sorted(changes),
            "previous": {k: _json_value(previous[k]) for k in sorted(previous)},
        },
    )
    session.commit()
    return updated


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def delete_order(session: Session, *, principal: Principal, order_id: int) -> Order:
    order = get_order(session, principal=principal, order_id=order_id)
    before = OrderState.of(order)
    # WHERE repeats the version read: the event's from-state is then the state really left.
    deleted = session.scalar(
        update(Order)
        .where(Order.id == order.id, Order.version == order.version, Order.deleted_at.is_(None))
        .values(deleted_at=utcnow(), version=Order.version + 1, updated_at=utcnow())
        .returning(Order)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    if deleted is None:
        get_order(session, principal=principal, order_id=order_id)  # 404 if it went meanwhile
        raise VersionConflict("Order changed while it was being deleted; read it again")
    record_event(session, order=deleted, before=before, type=EventType.DELETED, actor=principal)
    session.commit()
    return deleted
