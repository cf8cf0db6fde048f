"""Idempotency-Key: the key row commits in the same transaction as the order action it guards.

One transaction per keyed request: read the key; if it is new, insert it (naming the order, or
left for create_order to fill in before its commit), run the action, commit. There is no second
write after the action, so no crash, kill or dropped connection can leave a key that answers
"in progress" although its order exists: either both committed, and a retry replays the order,
or neither did, and a retry runs the action. A concurrent duplicate blocks on the unique index
(Postgres; SQLite serialises writers) until the first commits, then replays it; it waits at
most `idempotency_wait_seconds` and then answers 409 `idempotency_in_progress`.

Lock order, one for every keyed action: the key row (its foreign keys take KEY SHARE on the
user's and the order's rows), then the courier's row (FOR NO KEY UPDATE, which KEY SHARE never
blocks), then the order's row (the conditional UPDATE). See docs/decisions.md.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    lock_conflict,
)
from app.db.base import utcnow
from app.db.dml import changed_rows
from app.db.errors import violated_constraint
from app.db.models import IdempotencyKey, Order
from app.db.session import is_postgres
from app.services.auth import Principal
from app.services.orders import get_order
from app.services.retry import retrying

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Passes over read-then-insert: the second finds the row a concurrent first request committed
# (or the expired row its rollback left behind), the third is margin. Never a sleep.
PASSES = 3

# The action: runs the order change in the session and commits it. It receives the key row
# when it must name the order it creates before that commit; otherwise None.
Action = Callable[[IdempotencyKey | None], Order]


@dataclass(frozen=True)
class KeyedRequest:
    key: str
    method: str
    path: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status_code: int
    order: Order
    replayed: bool = False


def fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def run_order_action(
    session: Session,
    *,
    principal: Principal,
    request: KeyedRequest | None,
    status_code: int,
    order_id: int | None,
    action: Action,
) -> Outcome:
    """Runs action, once per (user, key) when the request carries a key.

    order_id is the order an action acts on (None for create). A transaction that loses a
    deadlock is run again from the start (see retry.py): the key row went with its rollback.
    """
    if request is None:
        return Outcome(status_code, retrying(session, lambda: action(None)))
    if not request.key.strip() or len(request.key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    request_hash = fingerprint(request.method, request.path, request.body)

    def attempt() -> Outcome:
        return _run_keyed(
            session,
            principal=principal,
            request=request,
            request_hash=request_hash,
            status_code=status_code,
            order_id=order_id,
            action=action,
        )

    return retrying(session, attempt)


def _run_keyed(
    session: Session,
    *,
    principal: Principal,
    request: KeyedRequest,
    request_hash: str,
    status_code: int,
    order_id: int | None,
    action: Action,
) -> Outcome:
    user_id = principal.user.id
    for _ in range(PASSES):
        row = _existing(session, user_id, request.key)
        if row is not None and row.created_at >= utcnow() - TTL:
            return _replay(session, principal, row, request_hash)
        _purge_expired_keys(session, user_id)
        claimed = _claim(
            session,
            IdempotencyKey(
                user_id=user_id,
                key=request.key,
                method=request.method,
                path=request.path,
                request_hash=request_hash,
                order_id=order_id,
                status_code=status_code,
            ),
        )
        if claimed is not None:
            break
    else:
        raise IdempotencyInProgress("A request with this key is still in progress; retry")
    try:
        order = action(claimed)
        # Commits the key alone when the action changed nothing (a repeat of a state already
        # reached); after an action that committed, there is nothing left to write.
        session.commit()
    except Exception:
        # A refused or failed request is not stored: its key goes with the rollback.
        session.rollback()
        raise
    return Outcome(status_code, order)


def _existing(session: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )


def _replay(
    session: Session, principal: Principal, row: IdempotencyKey, request_hash: str
) -> Outcome:
    if row.request_hash != request_hash:
        session.rollback()
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request")
    if row.order_id is None:
        session.rollback()
        raise IdempotencyInProgress("A request with this key is still in progress; retry")
    # The order as the caller may see it now, with the status code the first request answered.
    return Outcome(
        row.status_code,
        get_order(session, principal=principal, order_id=row.order_id),
        replayed=True,
    )


def _purge_expired_keys(session: Session, user_id: int) -> None:
    """Deletes the user's expired keys as new ones come, so the table holds ~24 h of traffic.

    SKIP LOCKED: a key another request is deleting right now is left to it, so this never waits.
    """
    expired = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.created_at < utcnow() - TTL)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired)))


def _claim(session: Session, row: IdempotencyKey) -> IdempotencyKey | None:
    """Inserts the key row; None when a concurrent request holding the same key committed first."""
    if row.order_id is not None and session.get(Order, row.order_id) is None:
        session.rollback()
        raise NotFound("Order not found")
    postgres = is_postgres(session)
    if postgres:
        # The insert waits on the unique index while a duplicate's transaction is open: bound it.
        wait_ms = int(get_settings().idempotency_wait_seconds * 1000)
        session.execute(
            text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": f"{wait_ms}ms"}
        )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        if violated_constraint(exc) != "idempotency_keys_user_id_key_key":
            raise
        return None
    except OperationalError as exc:
        if lock_conflict(exc) != "lock_not_available":
            raise
        session.rollback()
        raise IdempotencyInProgress("A request with this key is still in progress; retry") from exc
    if postgres:
        session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
    return row


def purge_expired(session: Session) -> int:
    purged = changed_rows(
        session, delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - TTL)
    )
    session.commit()
    return purged
