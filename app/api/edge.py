"""The app's edge as plain ASGI: request-body caps and security headers on every response."""

import json
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import PROBLEM_JSON, problem_body
from app.core.config import Settings

# The docs pages (app/api/docs.py) run Swagger UI and ReDoc from the app's own origin only.
# ReDoc's styled-components inject <style> elements, hence 'unsafe-inline' for styles alone;
# scripts stay 'self' (the init scripts are files, never inline).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")
# The console (app/console) is strict: its own scripts and styles only, none inline, no eval;
# connect-src 'self' for htmx's requests and the EventSource of the live board.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CONSOLE_PREFIX = "/console"
HSTS_VALUE = b"max-age=31536000; includeSubDomains"


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes its cap; the 413 has already gone out."""


def problem_bytes(status: int, code: str, title: str, detail: str) -> bytes:
    # The shape of app/api/errors.problem, built without a Response object because it is sent
    # from inside the ASGI receive/send plumbing.
    return json.dumps(problem_body(status, code, title, detail)).encode()


# Proof uploads (POST /v1/orders/{id}/proofs) are the one body allowed past the multipart cap.
PROOF_UPLOAD_PATH = re.compile(r"^/v1/orders/[0-9]+/proofs/?$")
# Room for the form's other fields and the multipart boundaries around the file.
MULTIPART_ENVELOPE_BYTES = 64 * 1024


def body_limit_for(settings: Settings) -> Callable[..., int]:
    """The cap for a content type (and path): the hook where uploads get their own limit."""

    def limit(content_type: str, path: str = "") -> int:
        if content_type.startswith("multipart/form-data"):
            if PROOF_UPLOAD_PATH.match(path):
                return max(
                    settings.max_multipart_body_bytes,
                    settings.proof_max_bytes + MULTIPART_ENVELOPE_BYTES,
                )
            return settings.max_multipart_body_bytes
        return settings.max_body_bytes

    return limit


class BodyLimitMiddleware:
    """Refuses bodies over the cap with 413 before reading them.

    A declared Content-Length over the cap is refused before the app runs; a body without one
    (chunked) is counted as it is received and cut off at the cap, with the 413 sent and the
    app's own reply to the broken body dropped.
    """

    def __init__(self, app: ASGIApp, *, limit: Callable[..., int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        cap = self.limit(content_type, scope.get("path", ""))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _send_413(send, cap)
            return

        received = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    if not started and not refused:
                        refused = True
                        await _send_413(send, cap)
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not refused:
                raise


async def _send_413(send: Send, cap: int) -> None:
    body = problem_bytes(
        413, "payload_too_large", "Payload too large", f"The request body exceeds {cap} bytes"
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                # The unread rest of the body is not worth reading: end the connection.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """Adds the security headers to every response, and no-store unless a route set caching."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_docs = path in DOCS_PATHS or path.startswith("/docs/")
        csp = DOCS_CSP if is_docs else API_CSP
        if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
            csp = CONSOLE_CSP
        hsts = self.hsts or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                added = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", csp.encode()),
                ]
                # Responses carry tokens and personal data: no cache keeps them unless the
                # route chose otherwise (the SSE stream, the docs' static assets).
                if b"cache-control" not in present:
                    added.append((b"cache-control", b"no-store"))
                if hsts:
                    added.append((b"strict-transport-security", HSTS_VALUE))
                message["headers"] = headers + [h for h in added if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)
