"""Idempotency-Key: the first request with a key runs, repeats get its stored response.

The key row is inserted in the same transaction as the action it guards. A concurrent duplicate
blocks on the unique index (Postgres) or the write lock (SQLite) until the first commits, then
finds the row and replays it: the action runs once. Keys are scoped to the user and kept 24 h.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidInput
from app.db.base import utcnow
from app.db.errors import violated_constraint
from app.db.models import IdempotencyKey

TTL = timedelta(hours=24)
WAIT_FOR_FIRST_SECONDS = 5.0
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


def fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def _existing(session: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )


def _replay_or_raise(row: IdempotencyKey, request_hash: str) -> StoredResponse | None:
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request")
    if row.status_code is None:
        return None
    return StoredResponse(row.status_code, json.loads(row.response_body or "null"))


def run_idempotent(
    session: Session,
    *,
    user_id: int,
    key: str,
    method: str,
    path: str,
    body: bytes,
    action: Callable[[], tuple[int, Any]],
) -> StoredResponse:
    """Runs action() once per (user, key); action commits, and returns (status, JSON body)."""
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    request_hash = fingerprint(method, path, body)
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        row = _existing(session, user_id, key)
        if row is not None and row.created_at < utcnow() - TTL:
            row = None  # expired: deleted below with the user's other expired keys
        if row is not None:
            stored = _replay_or_raise(row, request_hash)
            if stored is not None:
                session.rollback()
                return stored
            # The first request has committed its action but not yet its response; wait.
            session.rollback()
            if time.monotonic() > deadline:
                raise IdempotencyInProgress("A request with this key is still in progress")
            time.sleep(0.05)
            continue
        # Expired keys of this user go as new ones come: the table stays ~24 h of traffic.
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.created_at < utcnow() - TTL
            )
        )
        session.add(
            IdempotencyKey(
                user_id=user_id, key=key, method=method, path=path, request_hash=request_hash
            )
        )
        try:
            session.flush()
        except IntegrityError as exc:
            session.rollback()
            if violated_constraint(exc) != "idempotency_keys_user_id_key_key":
                raise
            continue  # a concurrent first request won the insert: read and replay it
        break
    try:
        status_code, response = action()  # commits the key row together with the action
    except Exception:
        # A refused or failed request is not stored: the key is released and a retry runs.
        session.rollback()
        raise
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status_code=status_code, response_body=json.dumps(response))
    )
    session.commit()
    return StoredResponse(status_code, response)


def purge_expired(session: Session) -> int:
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - TTL)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
