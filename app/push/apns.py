"""APNs over HTTP/2: the provider token (ES256 JWT) and one typed outcome per push."""

import asyncio
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.core.config import Settings
from app.db.models import ApnsEnvironment

log = logging.getLogger("zariz.push.apns")

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
# Apple rejects provider tokens older than an hour and throttles renewing more often than every
# 20 minutes; renewing at 50 minutes stays clear of both.
TOKEN_MAX_AGE = 50 * 60
# Reasons that mean this device token will never work again: stop pushing to the device.
GONE_REASONS = frozenset({"BadDeviceToken", "Unregistered"})
EXPIRED_REASON = "ExpiredProviderToken"

CLOSE_TIMEOUT = 5.0

Clock = Callable[[], float]


class Outcome(StrEnum):
    SENT = "sent"
    GONE = "gone"  # the device token is dead: disable the device
    RETRY = "retry"  # 429, 5xx, 403 or a network error: try again later
    REJECTED = "rejected"  # a problem with this push itself (payload, path): retrying won't help


@dataclass(frozen=True)
class ApnsResult:
    outcome: Outcome
    status: int | None = None
    reason: str | None = None

    @property
    def error(self) -> str:
        return " ".join(str(p) for p in (self.status, self.reason) if p is not None) or "error"


class ApnsConfigError(RuntimeError):
    pass


def apns_settings_given(settings: Settings) -> dict[str, bool]:
    return {
        "APNS_KEY_ID": bool(settings.apns_key_id),
        "APNS_TEAM_ID": bool(settings.apns_team_id),
        "APNS_TOPIC": bool(settings.apns_topic),
        "APNS_KEY or APNS_KEY_FILE": bool(settings.apns_key) or settings.apns_key_file is not None,
    }


def apns_configured(settings: Settings) -> bool:
    """The one "is APNs configured?" decision: all of it (True), none of it (False), or refused.

    It is the sending process's decision (the push worker's), never the API's: an API process
    without the key still writes pending jobs for a separate worker that has it. Half a
    configuration is a mistake that would skip every push silently, so it raises.
    """
    given = apns_settings_given(settings)
    if all(given.values()):
        return True
    if any(given.values()):
        missing = ", ".join(name for name, present in given.items() if not present)
        raise ApnsConfigError(f"APNs is half-configured: {missing} missing (set all or none)")
    return False


def check_apns(settings: Settings) -> None:
    """Raises ApnsConfigError for a half or broken APNs configuration, before anything starts."""
    if apns_configured(settings):
        load_signing_key(settings)


def load_signing_key(settings: Settings) -> EllipticCurvePrivateKey:
    if settings.apns_key:
        # A PEM pasted into one environment variable often arrives with literal "\n".
        pem = settings.apns_key.replace("\\n", "\n").encode()
    elif settings.apns_key_file is not None:
        try:
            pem = settings.apns_key_file.read_bytes()
        except OSError as exc:
            raise ApnsConfigError(f"cannot read APNS_KEY_FILE: {exc.strerror}") from exc
    else:
        raise ApnsConfigError("APNS_KEY or APNS_KEY_FILE is required")
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ApnsConfigError("the APNs key is not a PEM private key (.p8)") from exc
    if not isinstance(key, EllipticCurvePrivateKey):
        raise ApnsConfigError("the APNs key must be an EC P-256 key (.p8)")
    return key


class ProviderToken:
    """The ES256 JWT APNs authenticates us by, minted once and shared by every request."""

    def __init__(
        self, *, key: EllipticCurvePrivateKey, key_id: str, team_id: str, clock: Clock = time.time
    ) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at = 0.0

    def _mint(self) -> str:
        self._issued_at = self._clock()
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": int(self._issued_at)},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        log.info("APNs provider token issued")
        return self._token

    def current(self) -> str:
        with self._lock:
            if self._token is None or self._clock() - self._issued_at >= TOKEN_MAX_AGE:
                return self._mint()
            return self._token

    def renew(self, stale: str) -> str:
        """A new token unless another thread already replaced the stale one."""
        with self._lock:
            if self._token == stale:
                return self._mint()
            return self._token or self._mint()


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.apns_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.apns_ca_file))
    return context


class ApnsClient:
    """Sends pushes as concurrent streams of one HTTP/2 connection per APNs host.

    The connection lives on an event loop of its own thread: httpx's async HTTP/2 runs every
    stream on one thread, where its sync client shares HPACK and stream state between threads
    unsafely. Callers in any thread use submit() (a future) or send() (blocking).
    """

    def __init__(self, settings: Settings, *, clock: Clock = time.time) -> None:
        if not (settings.apns_key_id and settings.apns_team_id and settings.apns_topic):
            raise ApnsConfigError("APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC are required")
        self._topic = settings.apns_topic
        self._base_url = settings.apns_url.rstrip("/") if settings.apns_url else None
        self.tokens = ProviderToken(
            key=load_signing_key(settings),
            key_id=settings.apns_key_id,
            team_id=settings.apns_team_id,
            clock=clock,
        )
        # http1=False: HTTP/2 only, negotiated by ALPN over TLS and by prior knowledge over an
        # http:// URL (h2c), which is how tests reach a local fake.
        self._http = httpx.AsyncClient(
            http1=False,
            http2=True,
            verify=_ssl_context(settings),
            timeout=httpx.Timeout(settings.apns_timeout),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="apns-http2", daemon=True
        )
        self._thread.start()

    def base_url(self, environment: str) -> str:
        if self._base_url:
            return self._base_url
        return SANDBOX_URL if environment == ApnsEnvironment.SANDBOX else PRODUCTION_URL

    def submit(
        self, *, token: str, environment: str, payload: dict[str, Any]
    ) -> "Future[ApnsResult]":
        return asyncio.run_coroutine_threadsafe(
            self._send(token=token, environment=environment, payload=payload), self._loop
        )

    def send(self, *, token: str, environment: str, payload: dict[str, Any]) -> ApnsResult:
        return self.submit(token=token, environment=environment, payload=payload).result()

    async def _send(self, *, token: str, environment: str, payload: dict[str, Any]) -> ApnsResult:
        url = f"{self.base_url(environment)}/3/device/{token}"
        body = json.dumps(payload, separators=(",", ":")).encode()
        bearer = self.tokens.current()
        result = await self._post(url, body, bearer)
        if result.status == 403 and result.reason == EXPIRED_REASON:
            # Renewed at once and the push retried once; a second refusal is an ordinary retry.
            result = await self._post(url, body, self.tokens.renew(bearer))
        return result

    async def _post(self, url: str, body: bytes, bearer: str) -> ApnsResult:
        headers = {
            "authorization": f"bearer {bearer}",
            "apns-topic": self._topic,
            "apns-push-type": "background",
            "apns-priority": "5",
            "content-type": "application/json",
        }
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return ApnsResult(Outcome.RETRY, reason=f"network error: {type(exc).__name__}")
        return classify(response.status_code, _reason(response))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._http.aclose(), self._loop).result(CLOSE_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CLOSE_TIMEOUT)
        self._loop.close()


def _reason(response: httpx.Response) -> str | None:
    if response.status_code == 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return str(reason) if reason else None


def classify(status: int, reason: str | None) -> ApnsResult:
    if status == 200:
        return ApnsResult(Outcome.SENT, status)
    if status == 410 or (status == 400 and reason in GONE_REASONS):
        return ApnsResult(Outcome.GONE, status, reason)
    if status in (403, 429) or status >= 500:
        return ApnsResult(Outcome.RETRY, status, reason)
    return ApnsResult(Outcome.REJECTED, status, reason)
