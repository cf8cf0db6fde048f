"""Password hashing (Argon2id), access tokens (JWT) and opaque refresh tokens."""

import hashlib
import hmac
import math
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings, get_settings
from app.core.errors import InvalidInput, ServerBusy, Unauthorized


@lru_cache
def _hasher() -> PasswordHash:
    s = get_settings()
    return PasswordHash(
        (
            Argon2Hasher(
                time_cost=s.argon2_time_cost,
                memory_cost=s.argon2_memory_cost,
                parallelism=s.argon2_parallelism,
            ),
        )
    )


_slots_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None


def _hash_slots() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(max(1, get_settings().password_hash_concurrency))
        return _slots


def reset_hash_slots() -> None:
    """Sizes the cap again from the current settings (tests)."""
    global _slots
    with _slots_lock:
        _slots = None


@contextmanager
def _hash_slot() -> Iterator[None]:
    # Each Argon2id run takes ARGON2_MEMORY_COST (64 MiB) while it lasts: unbounded, anonymous
    # requests (unknown-user logins, sign-ups) ran dozens at once and grew one process by GiBs.
    # A request that cannot get a slot soon is told to come back rather than queue without end.
    s = get_settings()
    slots = _hash_slots()
    if not slots.acquire(timeout=s.password_hash_wait_seconds):
        raise ServerBusy(retry_after=max(1, math.ceil(s.password_hash_wait_seconds)))
    try:
        yield
    finally:
        slots.release()


@lru_cache
def _dummy_hash() -> str:
    # Verified against when the identifier is unknown, so both paths cost one Argon2id run.
    with _hash_slot():
        return _hasher().hash(secrets.token_urlsafe(16))


# The password policy, in this one place: the API schemas' Password type is built from these
# bounds, and hash_password refuses what breaks them, so no other way of setting a password
# (an admin form, the CLI, a future script) can store a weaker one.
PASSWORD_MIN_LENGTH = 8
# Argon2 hashes any length, but each byte costs; longer than this is not a password.
PASSWORD_MAX_LENGTH = 256


def check_password_policy(password: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(f"password must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput(f"password must be at most {PASSWORD_MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The hash of a new password, which must meet the policy (checked before any hashing)."""
    check_password_policy(password)
    with _hash_slot():
        return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    target = password_hash if password_hash is not None else _dummy_hash()
    with _hash_slot():
        ok = _hasher().verify(password, target)
    return ok and password_hash is not None


def normalize_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    return email.strip().lower()


_PHONE_JUNK = re.compile(r"[\s\-().]")


def normalize_phone(phone: str | None) -> str | None:
    """Keeps a leading + and digits only, so '+972 (50) 123-4567' and '+972501234567' match."""
    if phone is None or not phone.strip():
        return None
    cleaned = _PHONE_JUNK.sub("", phone.strip())
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    return cleaned


def looks_like_phone(value: str) -> bool:
    cleaned = normalize_phone(value) or ""
    return bool(re.fullmatch(r"\+?\d{6,15}", cleaned))


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: int
    role: str
    expires_at: datetime


def create_access_token(
    *,
    user_id: int,
    role: str,
    session_id: int,
    store_ids: list[int],
    name: str | None = None,
    email: str | None = None,
    settings: Settings | None = None,
) -> str:
    s = settings or get_settings()
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "session_id": str(session_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=s.access_token_ttl)).timestamp()),
        "iss": s.jwt_issuer,
        "aud": s.jwt_audience,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    if role == "store":
        claims["store_ids"] = store_ids
    # The user's own name and email, for the client to show who is signed in (OIDC's claim
    # names). Display only: authorization reads the user from the database, never these.
    if name:
        claims["name"] = name
    if email:
        claims["email"] = email
    return jwt.encode(claims, s.jwt_secret, algorithm=s.jwt_algorithm)


def decode_access_token(
    token: str, settings: Settings | None = None, *, allow_expired: bool = False
) -> AccessClaims:
    """allow_expired: for the live stream only, which checks the session instead (see
    authenticate); the signature, issuer, audience and type are checked all the same."""
    s = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            s.jwt_secret,
            algorithms=[s.jwt_algorithm],
            audience=s.jwt_audience,
            issuer=s.jwt_issuer,
            options={
                "require": ["exp", "iat", "sub", "iss", "aud", "session_id"],
                "verify_exp": not allow_expired,
            },
        )
        if claims.get("typ") != "access":
            raise Unauthorized("Not an access token")
        return AccessClaims(
            user_id=int(claims["sub"]),
            session_id=int(claims["session_id"]),
            role=str(claims.get("role", "")),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
        raise Unauthorized("Invalid token") from exc


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    # 256 random bits need no slow hash: SHA-256 is enough and keeps refresh O(1) and cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def format_refresh_token(session_id: int, secret: str) -> str:
    return f"{session_id}.{secret}"


# ASCII digits only (str.isdigit accepts "²", which int() refuses) and at most 19 of them.
_REFRESH_TOKEN = re.compile(r"([0-9]{1,19})\.(.+)", re.DOTALL)
_MAX_SESSION_ID = 2**63 - 1  # the id column is a signed 64-bit integer on both databases


def parse_refresh_token(token: str) -> tuple[int, str]:
    match = _REFRESH_TOKEN.fullmatch(token)
    if match is None or int(match[1]) > _MAX_SESSION_ID:
        raise Unauthorized("Invalid refresh token")
    return int(match[1]), match[2]


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
