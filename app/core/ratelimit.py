"""Failed-login rate limits, kept in memory or in a shared store (Redis) across processes."""

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter

from app.core.config import get_settings
from app.core.errors import RateLimited


@lru_cache
def _limiter() -> RateLimiter:
    return MovingWindowRateLimiter(storage_from_string(get_settings().rate_limit_storage))


def _limits() -> tuple[RateLimitItem, RateLimitItem]:
    s = get_settings()
    return parse(s.login_limit_per_identifier), parse(s.login_limit_per_client)


def check_login_allowed(*, identifier: str, client: str) -> None:
    """Raises 429 with Retry-After once either key has used up its failures."""
    per_identifier, per_client = _limits()
    for item, key in ((per_identifier, f"id:{identifier}"), (per_client, f"ip:{client}")):
        if not _limiter().test(item, "login", key):
            reset_at, _remaining = _limiter().get_window_stats(item, "login", key)
            raise RateLimited(max(1, math.ceil(reset_at - time.time())))


def record_login_failure(*, identifier: str, client: str) -> None:
    per_identifier, per_client = _limits()
    _limiter().hit(per_identifier, "login", f"id:{identifier}")
    _limiter().hit(per_client, "login", f"ip:{client}")


def reset_login_failures(*, identifier: str) -> None:
    per_identifier, _ = _limits()
    _limiter().clear(per_identifier, "login", f"id:{identifier}")


def reset_all() -> None:
    _limiter().storage.reset()
