"""A local APNs for tests and the bench: HTTP/2 (h2c or TLS) on 127.0.0.1, scriptable per token.

It checks what Apple checks that matters to us: the provider token's ES256 signature, key id,
team and age, the topic, push type, priority and payload; records every request; and answers
each device token from a script (200, 410, 429, 500, 403 ExpiredProviderToken, ...), optionally
slowly or held until released.
"""

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypercorn.asyncio import serve
from hypercorn.config import Config

KEY_ID = "KEY1234567"
TEAM_ID = "TEAM123456"
TOPIC = "dev.zariz.courier"
PROVIDER_TOKEN_MAX_AGE = 3600

Scope = dict[str, Any]


def new_signing_key() -> tuple[str, ec.EllipticCurvePublicKey]:
    """A fresh P-256 key like Apple's .p8: the PEM for APNS_KEY and the public half for checks."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return pem, key.public_key()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    reason: str | None = None
    delay: float = 0.0
    # Wait for release() before answering: a request the server is "slow" on.
    hold: bool = False


OK = Reply()
GONE = Reply(410, "Unregistered")
BAD_TOKEN = Reply(400, "BadDeviceToken")
TOO_MANY = Reply(429, "TooManyRequests")
ERROR = Reply(500, "InternalServerError")
EXPIRED = Reply(403, "ExpiredProviderToken")


@dataclass
class Seen:
    token: str
    http_version: str
    client: tuple[str, int] | None
    headers: dict[str, str]
    payload: Any
    provider_token: str
    claims: dict[str, Any]
    received_at: float
    status: int = 0
    reason: str | None = None
    answered_at: float | None = None


@dataclass
class _State:
    scripts: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    default: Reply = OK
    expired: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)


def _quiet_on_cancel(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Connections still open at shutdown are cancelled; asyncio would print each one.
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


class FakeApns:
    def __init__(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        key_id: str = KEY_ID,
        team_id: str = TEAM_ID,
        topic: str = TOPIC,
        certfile: Path | None = None,
        keyfile: Path | None = None,
    ) -> None:
        self.public_key = public_key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self._certfile = certfile
        self._keyfile = keyfile
        self._lock = threading.Lock()
        self._state = _State()
        self._arrived = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._token_claims: dict[str, dict[str, Any]] = {}
        self.port = 0

    # -- control (from the test's thread) ----------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self._certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def script(self, token: str, *replies: Reply) -> None:
        """Answers the next requests for token with these replies, then with the default."""
        with self._lock:
            self._state.scripts[token].extend(replies)

    def set_default(self, reply: Reply) -> None:
        with self._lock:
            self._state.default = reply

    def expire_seen_tokens(self) -> None:
        """Every provider token used so far gets 403 ExpiredProviderToken from now on."""
        with self._lock:
            self._state.expired.update(s.provider_token for s in self._state.seen)

    def release(self) -> None:
        """Lets held requests answer, and every later held reply answer at once."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def reset(self) -> None:
        with self._lock:
            self._state = _State()
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._new_release_event(), self._loop).result(5)

    def requests(self, token: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._state.seen if token is None or s.token == token]

    def answered(self, token: str, status: int = 200) -> int:
        return sum(1 for s in self.requests(token) if s.status == status)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Seen]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._state.seen) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._state.seen)} of {count} requests arrived")
                self._arrived.wait(left)
            return list(self._state.seen)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeApns":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # a free port chosen by the kernel, never a fixed one
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]
        config.accesslog = None
        config.errorlog = None
        config.loglevel = "WARNING"
        config.graceful_timeout = 0.5
        # hypercorn sends GOAWAY after 1000 requests on a connection by default; APNs keeps
        # connections for hours, and the bench sends many thousands.
        config.keep_alive_max_requests = 10**9
        if self._certfile and self._keyfile:
            config.certfile = str(self._certfile)
            config.keyfile = str(self._keyfile)
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="fake-apns", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake APNs did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._shutdown is not None:
            self._loop.call_soon_threadsafe(self._release_and_shutdown)
        if self._thread is not None:
            self._thread.join(10)

    def _release_and_shutdown(self) -> None:
        assert self._release is not None
        assert self._shutdown is not None
        self._release.set()
        self._shutdown.set()

    async def _new_release_event(self) -> None:
        if self._release is not None:
            self._release.set()  # nothing stays held across a reset
        self._release = asyncio.Event()

    def _run(self, config: Config) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_on_cancel)
        self._loop = loop
        self._shutdown = asyncio.Event()
        self._release = asyncio.Event()
        loop.call_soon(self._ready.set)
        try:
            loop.run_until_complete(
                serve(self._app, config, shutdown_trigger=self._shutdown.wait)  # type: ignore[arg-type]
            )
        finally:
            loop.close()

    # -- the ASGI app ------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": f"{kind}.complete"})
                if kind == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-request: APNs never saw a push
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, reason = await self._handle(scope, body)
        headers = [(b"apns-id", str(uuid.uuid4()).encode())]
        content = b""
        if status != 200:
            answer: dict[str, Any] = {"reason": reason}
            if status == 410:
                answer["timestamp"] = int(time.time() * 1000)
            content = json.dumps(answer).encode()
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _handle(self, scope: Scope, body: bytes) -> tuple[int, str | None]:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path: str = scope["path"]
        token = path.removeprefix("/3/device/") if path.startswith("/3/device/") else ""
        bearer = headers.get("authorization", "").removeprefix("bearer ")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        claims: dict[str, Any] = {}
        seen = Seen(
            token=token,
            http_version=scope["http_version"],
            client=tuple(scope["client"]) if scope.get("client") else None,
            headers=headers,
            payload=payload,
            provider_token=bearer,
            claims=claims,
            received_at=time.time(),
        )
        with self._arrived:
            self._state.seen.append(seen)
            self._arrived.notify_all()
            expired = bearer in self._state.expired
        status, reason = self._check(scope, headers, token, bearer, payload, claims, expired)
        if status == 200:
            reply = self._next_reply(token)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.hold:
                assert self._release is not None
                await self._release.wait()
            status, reason = reply.status, reply.reason
        with self._lock:
            seen.status, seen.reason, seen.answered_at = status, reason, time.time()
        return status, reason

    def _next_reply(self, token: str) -> Reply:
        with self._lock:
            queue = self._state.scripts.get(token)
            return queue.popleft() if queue else self._state.default

    def _verified(self, bearer: str) -> dict[str, Any]:
        # Like APNs, verify a provider token's signature once, not on every push it carries
        # (it keeps the fake from being the bottleneck of the bench).
        claims = self._token_claims.get(bearer)
        if claims is None:
            claims = jwt.decode(
                bearer,
                self.public_key,
                algorithms=["ES256"],
                issuer=self.team_id,
                options={"require": ["iss", "iat"]},
            )
            self._token_claims[bearer] = claims
        return claims

    def _check(
        self,
        scope: Scope,
        headers: dict[str, str],
        token: str,
        bearer: str,
        payload: Any,
        claims: dict[str, Any],
        expired: bool,
    ) -> tuple[int, str | None]:
        if scope["method"] != "POST":
            return 405, "MethodNotAllowed"
        if not token:
            return 404, "BadPath"
        if not bearer:
            return 403, "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(bearer)
            claims.update(self._verified(bearer))
        except jwt.PyJWTError:
            return 403, "InvalidProviderToken"
        if header.get("kid") != self.key_id or header.get("alg") != "ES256":
            return 403, "InvalidProviderToken"
        if expired or time.time() - float(claims["iat"]) > PROVIDER_TOKEN_MAX_AGE:
            return 403, "ExpiredProviderToken"
        if headers.get("apns-topic") != self.topic:
            return 400, "BadTopic" if "apns-topic" in headers else "MissingTopic"
        if headers.get("apns-push-type") != "background":
            return 400, "InvalidPushType"
        if headers.get("apns-priority") != "5":
            return 400, "BadPriority"
        if not isinstance(payload, dict) or payload.get("aps") != {"content-available": 1}:
            return 400, "PayloadEmpty" if payload is None else "BadPayload"
        return 200, None
