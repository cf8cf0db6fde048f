"""Password hashing (Argon2id), access tokens (JWT) and opaque refresh tokens."""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings, get_settings
from app.core.errors import Unauthorized


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


@lru_cache
def _dummy_hash() -> str:
    # Verified against when the identifier is unknown, so both paths cost one Argon2id run.
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher().verify(password, _dummy_hash())
        return False
    return _hasher().verify(password, password_hash)


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
    return jwt.encode(claims, s.jwt_secret, algorithm=s.jwt_algorithm)


def decode_access_token(token: str, settings: Settings | None = None) -> AccessClaims:
    s = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            s.jwt_secret,
            algorithms=[s.jwt_algorithm],
            audience=s.jwt_audience,
            issuer=s.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud", "session_id"]},
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
