"""Validators for conditional GETs of the order list and the events feed, with no row read.

A list's answer can change only when something commits that its rows show: an order change
(every one records an order event: signals.EVENTS) or a user, store or membership change (names,
scope: signals.PRINCIPALS). This process counts those commits — its own through the after-commit
bus, other processes' through the LISTEN loops (app/realtime/runtime.py) — and the ETag of a list
is that count with this process's boot nonce, the caller's scope and the request's query. Any
commit changes every ETag of the process, so a client's ETag matches only if nothing anyone
could see has committed since it was issued.

Clock-based fields move without a commit: an order becomes `late` when its deliver_before
passes. The process keeps the next such deadline among unfinished orders (one indexed read, made
again only after a commit or once the deadline has passed) and counts a passed deadline like a
commit, so a list showing `late: false` stops matching the moment it would read `late: true`.

The count is per process, so an ETag issued by one process never matches on another (the client
gets a 200 and that process's ETag): correct, only less often a 304 when connections move.
On Postgres the validators are off while either LISTEN connection of the process is down.
"""

import hashlib
import secrets
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import FINAL_STATUSES, Order
from app.services import signals
from app.services.auth import Principal

_BOOT = secrets.token_hex(4)
_lock = threading.Lock()
_generation = 0
_remote: Callable[[], bool] | None = None
# The next deliver_before of an unfinished order, as read at generation _deadline_read_at
# (None in _deadline_read_at: not read since the last commit).
_deadline: datetime | None = None
_deadline_read_at: int | None = None


def bump(_payloads: list[str] | None = None) -> None:
    global _generation
    with _lock:
        _generation += 1


def generation() -> int:
    """How many visible changes this process has counted (the validators' middle part)."""
    return _generation


def deadline_read_due() -> int | None:
    """The generation to read the next deadline at, or None when memory already answers.

    A known deadline that has passed counts as a change first: every list showing it changes."""
    global _generation
    now = utcnow()
    with _lock:
        if _deadline_read_at == _generation:
            if _deadline is None or now <= _deadline:
                return None
            _generation += 1
        return _generation


def read_deadline(session: Session, generation: int) -> None:
    """Reads the next deliver_before of an unfinished order (one indexed read) and ends the read."""
    global _deadline, _deadline_read_at
    upcoming = session.scalar(
        select(func.min(Order.deliver_before)).where(
            Order.deliver_before >= utcnow(),
            Order.status.not_in(FINAL_STATUSES),
            Order.deleted_at.is_(None),  # the partial orders_deliver_before_id_idx
        )
    )
    session.commit()
    with _lock:
        if _generation == generation:  # no commit meanwhile (else read again next time)
            _deadline, _deadline_read_at = upcoming, generation


def hear_remote(connected: Callable[[], bool] | None) -> None:
    """Set by the process's LISTEN loops; on Postgres without one, no validators are issued."""
    global _remote
    _remote = connected
    bump()


def usable(postgres: bool) -> bool:
    if not postgres:
        return True
    remote = _remote
    return remote is not None and remote()


def etag(principal: Principal, resource: str, *, extra: str = "") -> str:
    """A weak validator of what `resource` (path and query) shows this caller now.

    Taken before the rows are read: a commit during the read changes the next one."""
    scope = f"{principal.user.id}|{principal.role}|{principal.store_ids}|{resource}|{extra}"
    digest = hashlib.blake2b(scope.encode(), digest_size=9).hexdigest()
    return f'W/"{_BOOT}.{_generation}.{digest}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list of tags or `*`."""
    if not if_none_match:
        return False
    candidates = [t.strip() for t in if_none_match.split(",")]
    bare = tag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == bare for c in candidates)


signals.subscribe(signals.EVENTS, bump)
signals.subscribe(signals.PRINCIPALS, bump)
