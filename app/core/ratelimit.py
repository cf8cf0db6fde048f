"""Attempt limits for login, sign-up and password change, in memory or shared (Redis)."""

# Every attempt is counted (an atomic moving-window `hit`) before the password is looked at, so
# concurrent guesses cannot all slip past one check. Login is limited three ways: tightly per
# identifier and client address, per client address across identifiers, and more loosely per
# identifier across addresses; an address the account signed in from before is exempt from the
# last one, so a stranger hammering an account cannot lock its owner out.

import contextlib
import math
import threading
import time
from collections.abc import Iterator

from limits import RateLimitItem, parse, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.config import get_settings
from app.core.errors import RateLimited

_build_lock = threading.Lock()
_limiter: MovingWindowRateLimiter | None = None
# The in-memory storage's per-key locks are created on first use without a lock of their own,
# so two threads could race past one limit; one process-wide lock makes each hit atomic. (Redis
# runs each moving-window hit as one Lua script, atomic across processes.)
_memory_lock = threading.Lock()


def init() -> MovingWindowRateLimiter:
    """Builds the limiter once; the app calls this at startup.

    Built lazily by the first requests, concurrent builds raced in the storage's lazy import of
    the redis client (`limits` saw a half-imported module) and failed the first logins with 500.
    """
    global _limiter
    with _build_lock:
        if _limiter is None:
            _limiter = MovingWindowRateLimiter(
                storage_from_string(get_settings().rate_limit_storage)
            )
        return _limiter


def rebuild() -> MovingWindowRateLimiter:
    """Forgets the limiter and builds it again from the current settings (tests)."""
    global _limiter
    with _build_lock:
        _limiter = None
    return init()


def _get() -> MovingWindowRateLimiter:
    return _limiter or init()


@contextlib.contextmanager
def _atomic() -> Iterator[MovingWindowRateLimiter]:
    limiter = _get()
    if isinstance(limiter.storage, MemoryStorage):
        with _memory_lock:
            yield limiter
    else:
        yield limiter


def _items(spec: str) -> list[RateLimitItem]:
    return list(parse_many(spec))


def _retry_after(limiter: MovingWindowRateLimiter, item: RateLimitItem, *keys: str) -> int:
    reset_at, _remaining = limiter.get_window_stats(item, *keys)
    return max(1, math.ceil(reset_at - time.time()))


def _hit(limiter: MovingWindowRateLimiter, spec: str, *keys: str) -> None:
    """Counts one attempt against every window of spec; 429 if one of them is used up."""
    for item in _items(spec):
        if not limiter.hit(item, *keys):
            raise RateLimited(_retry_after(limiter, item, *keys))


def _known_item() -> RateLimitItem:
    # "At most one success per N days" holds a timestamp per (account, address): the window is
    # full exactly while the address signed in to the account within the last N days.
    return parse(f"1/{get_settings().login_familiar_days} day")


def _is_familiar(limiter: MovingWindowRateLimiter, identifier: str, client: str) -> bool:
    return not limiter.test(_known_item(), "login-known", identifier, client)


def login_attempt(*, identifier: str, client: str) -> None:
    """Counts a login attempt before the password is checked; RateLimited once a limit is hit."""
    s = get_settings()
    with _atomic() as limiter:
        # Tightest first: an address already refused here spends nothing of the looser budgets,
        # so one stranger cannot use up the account's per-identifier limit alone.
        _hit(limiter, s.login_limit_per_identifier_client, "login", identifier, client)
        _hit(limiter, s.login_limit_per_client, "login-client", client)
        if not _is_familiar(limiter, identifier, client):
            _hit(limiter, s.login_limit_per_identifier, "login-id", identifier)


def login_succeeded(*, identifier: str, client: str) -> None:
    """Clears the account's count at this address and remembers the address as familiar."""
    s = get_settings()
    with _atomic() as limiter:
        for item in _items(s.login_limit_per_identifier_client):
            limiter.clear(item, "login", identifier, client)
        known = _known_item()
        limiter.clear(known, "login-known", identifier, client)
        limiter.hit(known, "login-known", identifier, client)


def register_attempt(*, client: str) -> None:
    with _atomic() as limiter:
        _hit(limiter, get_settings().register_limit_per_client, "register", client)


def password_attempt(*, user_id: int) -> None:
    """Counts an attempt at the current password (a stolen access token must not guess it)."""
    with _atomic() as limiter:
        _hit(limiter, get_settings().password_change_limit_per_user, "password", str(user_id))


def reset_all() -> None:
    _get().storage.reset()
