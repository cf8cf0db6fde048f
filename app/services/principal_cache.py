"""A per-process cache of authenticated callers, emptied by the change that makes one stale.

Every authenticated request used to read its user, session and stores before doing anything
(~half of the CPU of a small request). A repeated caller now reads none of them: the principal
is kept per access token for at most PRINCIPAL_CACHE_SECONDS.

Lockout stays instant because invalidation travels with the change, not with the clock:

- Any flush that changes a user (but its last login time), a store, a membership, or revokes or
  deletes a session — and any bulk UPDATE/DELETE of those tables sent through an ORM session,
  such as `revoke_sessions` — marks its session. At commit the session sends
  `NOTIFY zariz_principals` in the same transaction (Postgres), and after the commit this
  process's cache is emptied through the after-commit signal bus (both databases), before the
  response that reports the change is sent.
- Every API process LISTENs on that channel (app/realtime/runtime.py) and empties its cache on
  each notification and on each (re)connect. While that connection is down a Postgres process
  does not use the cache at all: it cannot hear other processes' changes.
- On SQLite the in-process bus suffices: one process serves.

Concurrent first requests with one token (a courier's two simultaneous taps) share one read:
the first leads (`lead`), the others wait for it to land and then ask the cache again. A
result is therefore shared only by being stored, under the rule any read obeys (`put`: not if
a change committed during it), and a waiter that then finds nothing reads for itself.

The TTL is the backstop for writes that bypass the ORM session (raw SQL by hand); it also bounds
how long a token whose JWT says something different from the database keeps being answered
from memory (never longer than the token's own expiry).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session

from app.db.models import Store, StoreMembership, User, UserSession
from app.db.session import is_postgres
from app.services import signals

# Bounds memory if tokens churn faster than the TTL clears them (10,000 couriers ≈ 10 MB).
MAX_ENTRIES = 50_000
_CHANGED = "zariz_principals_changed"
# A user's last login is written on every login and shows in no principal or list.
_USER_IGNORED = frozenset({"last_login_at", "updated_at"})
# A session's rotation (replaced_by_id) and creation do not end any access token; revocation does.
_SESSION_WATCHED = frozenset({"revoked_at", "expires_at", "user_id", "family_id"})


@dataclass(frozen=True)
class _Entry:
    value: Any
    token_expires_at: float  # the access token's exp (unix seconds): never served past it
    stored_at: float  # time.monotonic()


class PrincipalCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._epoch = 0
        # Tokens whose first read is in flight: the event is set when it lands (stored or not).
        self._flights: dict[str, threading.Event] = {}
        # Postgres: whether this process hears other processes' changes now (its LISTEN loop).
        self._remote: Callable[[], bool] | None = None
        self.hits = 0
        self.misses = 0

    def hear_remote(self, connected: Callable[[], bool] | None) -> None:
        """Set by the process's LISTEN loop; None (the default): not listening."""
        with self._lock:
            self._remote = connected
            self._entries.clear()
            self._epoch += 1

    def usable(self, session: Session, ttl: float) -> bool:
        if ttl <= 0:
            return False
        if not is_postgres(session):
            return True
        remote = self._remote
        return remote is not None and remote()

    def epoch(self) -> int:
        return self._epoch

    def get(self, token: str, ttl: float) -> Any | None:
        entry = self._entries.get(token)
        if entry is None:
            self.misses += 1
            return None
        if time.monotonic() - entry.stored_at >= ttl or time.time() >= entry.token_expires_at:
            with self._lock:
                if self._entries.get(token) is entry:
                    del self._entries[token]
            self.misses += 1
            return None
        self.hits += 1
        return entry.value

    def put(self, token: str, value: Any, *, token_expires_at: float, epoch: int) -> None:
        """Stores what was read since `epoch()` returned `epoch`, unless a change committed
        meanwhile (its invalidation may have run between the read and now)."""
        with self._lock:
            if self._epoch != epoch:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token] = _Entry(value, token_expires_at, time.monotonic())

    def lead(self, token: str) -> threading.Event | None:
        """None: the caller reads the token's principal and must call `land(token)` after,
        whatever happens. Else the read in flight: wait for it, then `get` again."""
        with self._lock:
            flight = self._flights.get(token)
            if flight is None:
                self._flights[token] = threading.Event()
            return flight

    def land(self, token: str) -> None:
        """The read `lead` gave this caller is over (its `put` already done, if any)."""
        with self._lock:
            flight = self._flights.pop(token, None)
        if flight is not None:
            flight.set()

    def invalidate(self, _payloads: list[str] | None = None) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


principals = PrincipalCache()
signals.subscribe(signals.PRINCIPALS, principals.invalidate)


def mark_changed(session: Session) -> None:
    """Principals may have changed in this transaction: invalidate everywhere at its commit."""
    session.info[_CHANGED] = True


def _changes_principals(obj: object, *, is_new: bool, is_deleted: bool) -> bool:
    if isinstance(obj, StoreMembership):
        return True
    if not isinstance(obj, User | Store | UserSession):
        return False
    if is_new:
        return False  # a new user, store or session ends nobody's access
    if is_deleted:
        return True
    state: InstanceState[Any] = inspect(obj)
    ignored = _USER_IGNORED if isinstance(obj, User) else frozenset()
    for attr in state.mapper.column_attrs:
        if attr.key in ignored:
            continue
        if isinstance(obj, UserSession) and attr.key not in _SESSION_WATCHED:
            continue
        if state.attrs[attr.key].history.has_changes():
            return True
    return False


@event.listens_for(Session, "before_flush")
def _mark_flushed_changes(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_CHANGED):
        return
    for objects, is_new, is_deleted in (
        (session.new, True, False),
        (session.dirty, False, False),
        (session.deleted, False, True),
    ):
        for obj in objects:
            if _changes_principals(obj, is_new=is_new, is_deleted=is_deleted):
                mark_changed(session)
                return


_BULK_WATCHED = (User, Store, StoreMembership, UserSession)


@event.listens_for(Session, "do_orm_execute")
def _mark_bulk_changes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.session.info.get(_CHANGED):
        return
    mapper = state.bind_mapper
    target = mapper.class_ if mapper is not None else None
    if target is None or not issubclass(target, _BULK_WATCHED):
        return
    if state.is_update and target is UserSession:
        values = getattr(state.statement, "_values", None) or {}
        names = {getattr(column, "key", str(column)) for column in values}
        if names and not names & _SESSION_WATCHED:
            return  # a rotation (replaced_by_id): every access token stays as valid as it was
    mark_changed(state.session)


@event.listens_for(Session, "before_commit")
def _notify_at_commit(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own flush comes after this hook: mark what it will write
    if session.info.pop(_CHANGED, False):
        signals.notify(session, signals.PRINCIPALS)
