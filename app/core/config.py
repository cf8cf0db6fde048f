"""Settings: every knob of the service, read once from the environment or `.env`."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "change_me", "secret", "dev", "dev-secret"}
DEV_JWT_SECRET = "dev-only-insecure-secret-do-not-use-in-production"  # noqa: S105
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DispatchMode(StrEnum):
    OPEN = "open"
    ASSIGN = "assign"


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

    dispatch_mode: DispatchMode = DispatchMode.OPEN
    self_signup: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Argon2id cost; tests lower it, production keeps the library's strong defaults.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 4

    rate_limit_storage: str = "memory://"
    login_limit_per_identifier: str = "5/minute"
    login_limit_per_client: str = "30/minute"

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
    # A fan-out safety net: re-read new events this often even if no notification arrived.
    sse_poll_seconds: float = 5.0
    # How often open streams re-check that their session and user are still live.
    sse_auth_recheck_seconds: float = 5.0
    # Frames buffered for one slow client before its stream is closed (it resumes by replay).
    sse_queue_max: int = 2000

    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _split_cors(cls, data: dict[str, object]) -> dict[str, object]:
        raw = data.get("cors_origins") if isinstance(data, dict) else None
        if isinstance(raw, str):
            data["cors_origins"] = [o.strip() for o in raw.split(",") if o.strip()]
        return data

    @model_validator(mode="after")
    def _production_guard(self) -> Self:
        if not self.jwt_secret.strip():
            # An empty JWT_SECRET= line (a copied .env.example) means "not set".
            self.jwt_secret = DEV_JWT_SECRET
        if self.zariz_env is Environment.PRODUCTION:
            secret = self.jwt_secret.strip()
            if (
                secret.lower() in PLACEHOLDER_SECRETS
                or secret == DEV_JWT_SECRET
                or "change" in secret.lower()
                or len(secret) < MIN_SECRET_LENGTH
            ):
                raise ValueError(
                    "JWT_SECRET must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production"
                )
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs PostgreSQL: set DATABASE_URL")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def direct_database_url(self) -> str:
        return self.database_url_direct or self.database_url

    @property
    def apns_configured(self) -> bool:
        has_key = bool(self.apns_key) or self.apns_key_file is not None
        return bool(self.apns_key_id and self.apns_team_id and self.apns_topic and has_key)


@lru_cache
def get_settings() -> Settings:
    return Settings()
