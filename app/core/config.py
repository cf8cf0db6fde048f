"""Settings: every knob of the service, read once from the environment or `.env`."""

import math
import re
from collections import Counter
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "change_me", "secret", "dev", "dev-secret"}
DEV_JWT_SECRET = "dev-only-insecure-secret-do-not-use-in-production"  # noqa: S105
MIN_SECRET_LENGTH = 32
# Shannon estimate over the secret's own characters: one letter repeated scores 0 bits,
# `secrets.token_urlsafe(32)` about 230.
MIN_SECRET_BITS = 64
# PyJWT signs these with the shared JWT_SECRET; any other value (`none`, RS*/ES* without a
# key pair) can only fail at the first login.
SUPPORTED_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
# OWASP's minimum Argon2id configurations (KiB of memory, iterations), parallelism 1: any
# memory/time pair at or above one of them is accepted in production.
OWASP_ARGON2_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
# Access tokens are bearer credentials: an hour bounds how long a leaked one works on its own
# (refresh tokens, which rotate, carry the long session).
MAX_PRODUCTION_ACCESS_TOKEN_TTL = 3600


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DispatchMode(StrEnum):
    OPEN = "open"
    ASSIGN = "assign"


class ProofStorageBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


DEFAULT_FAILURE_REASONS = (
    "recipient_absent",
    "wrong_address",
    "refused",
    "damaged",
    "unsafe_location",
    "other",
)


class PushWorkerMode(StrEnum):
    INLINE = "inline"
    OFF = "off"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    zariz_env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///./var/zariz.db"
    # Migrations and LISTEN need a direct connection when database_url goes through PgBouncer.
    database_url_direct: str | None = None
    # Threads serving sync endpoints. The pool (size + overflow) covers them plus the SSE hub's
    # six fan-out and replay threads, so neither waits on the other for a connection.
    threadpool_size: int = 40
    db_pool_size: int = 20
    db_max_overflow: int = 26

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "zariz"
    jwt_audience: str = "zariz-api"
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 14 * 24 * 3600
    # A refresh token presented again this soon after its rotation (two tabs, a retried request)
    # rotates again instead of being treated as stolen; later, reuse revokes the family. 0: off.
    refresh_reuse_window_seconds: float = 30.0

    dispatch_mode: DispatchMode = DispatchMode.OPEN
    # An accepted order not picked up within this many minutes of its acceptance goes back to
    # the pool (open mode) or to unassigned (assign mode), by the worker; 0 = never.
    auto_release_after_minutes: int = Field(default=0, ge=0, le=24 * 60)
    self_signup: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Argon2id cost; tests lower it, production keeps the library's strong defaults.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 4
    # Password hashes (and verifies) running at once in one process, each holding
    # ARGON2_MEMORY_COST; a request waits this long for a slot, then gets 503 server_busy.
    password_hash_concurrency: int = 2
    password_hash_wait_seconds: float = 5.0

    rate_limit_storage: str = "memory://"
    # Login attempts, each counted before its password is checked (`limits` notation, several
    # windows separated by ";"). Per account and client address: a user's own typos; cleared by
    # a successful login.
    login_limit_per_identifier_client: str = "10/minute;50/hour"
    # Per client address, whatever the account: one address spraying many accounts.
    login_limit_per_client: str = "30/minute"
    # Per account from all addresses it has not signed in from before: distributed guessing.
    login_limit_per_identifier: str = "20/minute;100/hour"
    # An address the account signed in from within this many days skips the per-account limit.
    login_familiar_days: int = 30
    register_limit_per_client: str = "10/hour"
    password_change_limit_per_user: str = "5/minute;20/hour"  # noqa: S105 (a rate, no secret)

    price_tier_boxes: int = 8
    price_tier_amount: int = 35
    price_max_tiers: int = 3
    default_capacity_boxes: int = 8
    # A courier's GET /v1/orders without limit: active orders, the pool, and the orders they
    # finished in this many days (the iOS app polls every 30 s and keeps only what it gets).
    courier_history_days: int = Field(default=7, ge=0)

    push_worker: PushWorkerMode = PushWorkerMode.INLINE
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_key: str | None = None
    apns_key_file: Path | None = None
    apns_topic: str | None = None
    apns_url: str | None = None
    # Extra CA bundle trusted for an https:// APNS_URL (a local TLS fake in tests); Apple's own
    # hosts are verified against the system store without it.
    apns_ca_file: Path | None = None
    apns_timeout: float = 10.0
    push_max_attempts: int = 6
    push_backoff_base: float = 1.0
    push_backoff_max: float = 300.0
    # Pushes in flight at once per worker, multiplexed as streams on one HTTP/2 connection.
    push_concurrency: int = 32
    # Fallback wake-up of an idle worker; new jobs wake it at once (NOTIFY or the local signal).
    push_poll_interval: float = 5.0
    # A claimed job is invisible to other workers this long; a crashed worker's jobs come back.
    push_lease_seconds: float = 60.0

    sse_heartbeat_seconds: float = 15.0
    sse_retry_ms: int = 3000
    # How long a missing event id holds back later ones before it is taken for rolled back
    # (see app/realtime/sequencer.py); on Postgres most gaps resolve much sooner.
    sse_gap_grace_seconds: float = 5.0
    # How long a process may reuse an authenticated caller (user, session, stores) without reading
    # them again; changes empty the cache at once (docs/performance.md), this is the backstop.
    # 0 turns the cache off.
    principal_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # A fan-out safety net: re-read new events this often even if no notification arrived.
    sse_poll_seconds: float = 5.0
    # How often open streams re-check that their session and user are still live.
    sse_auth_recheck_seconds: float = 5.0
    # Frames buffered for one slow client before its stream is closed (it resumes by replay).
    sse_queue_max: int = 2000
    # Open streams per user in this process; one more ends that user's oldest stream.
    sse_max_streams_per_user: int = Field(default=5, ge=1)

    # CSV export: more orders than this is 422 export_too_large (narrow the dates); more exports
    # at once per user (per process) is 429; a client that takes longer than the timeout to
    # accept one chunk is cut off.
    export_max_rows: int = Field(default=100_000, ge=1)
    export_max_per_user: int = Field(default=2, ge=1)
    export_send_timeout: float = Field(default=60.0, gt=0)

    # APNs devices: enabled devices per user and per session; registering one more disables the
    # least recently seen.
    devices_max_per_user: int = Field(default=10, ge=1)
    devices_max_per_session: int = Field(default=2, ge=1)

    # How long a request waits for a concurrent one holding the same Idempotency-Key to finish
    # before it answers 409 idempotency_in_progress (Postgres; SQLite queues on busy_timeout).
    idempotency_wait_seconds: float = 5.0

    log_level: str = "INFO"

    # --- Proofs of delivery (see docs/security.md, "Proofs").
    # Where the bytes go: a directory (the embedded default) or S3-compatible object storage.
    proof_storage: ProofStorageBackend = ProofStorageBackend.LOCAL
    proof_storage_dir: Path = Path("var/proofs")
    proof_s3_bucket: str | None = None
    # Unset for AWS itself; the endpoint of MinIO, R2 or another S3-compatible service.
    proof_s3_endpoint_url: str | None = None
    proof_s3_region: str = "us-east-1"
    # Unset: boto3's own credential chain (instance role, AWS_* environment, ~/.aws).
    proof_s3_access_key_id: str | None = None
    proof_s3_secret_access_key: SecretStr | None = None
    # Lifetime of the presigned download URLs the proof list hands out (S3 only).
    proof_url_ttl_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    # Largest proof file accepted; a larger upload is 413 before its body is read.
    proof_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Largest image accepted, in pixels (width x height), checked before it is decoded: a
    # small PNG can declare a huge canvas (a decompression bomb).
    proof_max_pixels: int = Field(default=50_000_000, ge=1)
    # Proofs one order may hold (both stages): a courier's app stuck in a loop cannot fill storage.
    proof_max_per_order: int = Field(default=20, ge=1)
    # An object in storage that no proof row names is deleted by housekeeping once older than
    # this (an upload whose row never committed).
    proof_orphan_grace_seconds: int = Field(default=3600, ge=60)
    # The reason codes a failed delivery may give (comma list); `other` needs a note.
    failure_reasons: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_FAILURE_REASONS)
    )

    # --- The edge: request bodies, headers, connections (see docs/security.md).
    # Largest request body accepted, by Content-Length or counted as it streams in; 413 beyond.
    max_body_bytes: int = 1024 * 1024
    # multipart/form-data bodies get their own cap, for uploads to come.
    max_multipart_body_bytes: int = 1024 * 1024
    # Request line plus headers; a larger head is refused with 431 before the app sees it.
    http_max_header_bytes: int = 16 * 1024
    # A connection must deliver its request head within this many seconds (slowloris).
    http_header_timeout: float = 10.0
    # An idle keep-alive connection is closed after this many seconds.
    http_keep_alive_timeout: int = 5
    # Connections plus in-flight requests per process before uvicorn answers 503; unset = none.
    # SSE streams count, so size it above the expected open streams.
    http_limit_concurrency: int | None = None
    # Peers whose X-Forwarded-For/-Proto are believed (comma list of IPs/CIDRs, `*` for any).
    # Empty: none, the TCP peer is the client.
    forwarded_allow_ips: str = ""
    # Send Strict-Transport-Security on every response (it is always sent over https).
    hsts: bool = False
    # The business's day: the `from`/`to` date filters, CSV dates and the console's day and clock.
    # An IANA zone such as Asia/Jerusalem; storage stays UTC.
    business_timezone: str = "UTC"
    # A courier's device time (`occurred_at` on an action) may be at most this far ahead of ours,
    # and at most this old: anything else is a 422, so it cannot be used to fake times.
    occurred_at_max_skew_seconds: int = Field(default=120, ge=0, le=3600)
    occurred_at_max_age_hours: int = Field(default=24, ge=1, le=24 * 14)

    @model_validator(mode="before")
    @classmethod
    def _split_cors(cls, data: dict[str, object]) -> dict[str, object]:
        raw = data.get("cors_origins") if isinstance(data, dict) else None
        if isinstance(raw, str):
            data["cors_origins"] = [o.strip() for o in raw.split(",") if o.strip()]
        return data

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"BUSINESS_TIMEZONE is not a known time zone: {value!r}") from None
        return value

    @field_validator("failure_reasons", mode="before")
    @classmethod
    def _split_reasons(cls, value: object) -> object:
        if isinstance(value, str):
            return [code.strip() for code in value.split(",") if code.strip()]
        return value

    @field_validator("failure_reasons")
    @classmethod
    def _reason_codes(cls, value: list[str]) -> list[str]:
        bad = [code for code in value if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", code)]
        if bad or not value:
            raise ValueError("FAILURE_REASONS must be a comma list of snake_case codes")
        return list(dict.fromkeys(value))

    @field_validator("jwt_algorithm")
    @classmethod
    def _supported_algorithm(cls, value: str) -> str:
        if value not in SUPPORTED_JWT_ALGORITHMS:
            raise ValueError(f"JWT_ALGORITHM must be one of {', '.join(SUPPORTED_JWT_ALGORITHMS)}")
        return value

    @model_validator(mode="after")
    def _production_guard(self) -> Self:
        if not self.jwt_secret.strip():
            # An empty JWT_SECRET= line (a copied .env.example) means "not set".
            self.jwt_secret = DEV_JWT_SECRET
        if self.zariz_env is Environment.PRODUCTION:
            # Every reason at once, so one restart fixes them all.
            reasons = production_refusals(self)
            if reasons:
                raise ValueError("; ".join(reasons))
        return self

    @property
    def business_zone(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def direct_database_url(self) -> str:
        return self.database_url_direct or self.database_url


def secret_bits(secret: str) -> float:
    counts = Counter(secret)
    return -sum(n * math.log2(n / len(secret)) for n in counts.values())


def production_refusals(settings: Settings) -> list[str]:
    """Why these settings are unsafe to serve production with; empty when they are fine."""
    reasons = []
    secret = settings.jwt_secret.strip()
    if (
        secret.lower() in PLACEHOLDER_SECRETS
        or secret == DEV_JWT_SECRET
        or "change" in secret.lower()
        or len(secret) < MIN_SECRET_LENGTH
        or secret_bits(secret) < MIN_SECRET_BITS
    ):
        reasons.append(
            f"JWT_SECRET must be random (at least {MIN_SECRET_LENGTH} varied characters, no "
            "placeholder) in production: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if settings.is_sqlite:
        reasons.append("production needs PostgreSQL: set DATABASE_URL")
    if (
        not any(
            settings.argon2_memory_cost >= memory and settings.argon2_time_cost >= time
            for memory, time in OWASP_ARGON2_MINIMUMS
        )
        or settings.argon2_parallelism < 1
    ):
        reasons.append(
            "ARGON2_MEMORY_COST/ARGON2_TIME_COST are below OWASP's minimum "
            "(19456 KiB x 2 iterations or an equivalent pair)"
        )
    if not 0 < settings.access_token_ttl <= MAX_PRODUCTION_ACCESS_TOKEN_TTL:
        reasons.append(
            f"ACCESS_TOKEN_TTL must be 1..{MAX_PRODUCTION_ACCESS_TOKEN_TTL} seconds in production"
        )
    return reasons


@lru_cache
def get_settings() -> Settings:
    return Settings()
