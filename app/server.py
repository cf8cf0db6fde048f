"""How `zariz serve` runs uvicorn: connection limits, header caps and proxy trust from settings."""

import asyncio
import ipaddress
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import DEV_JWT_SECRET, Environment, Settings, get_settings

_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request header fields too large\n"
)


class _HeadTooLarge(Exception):
    pass


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on the request head and a deadline for it.

    uvicorn bounds idle keep-alive connections but neither the size of a request head under
    httptools nor how long a client may take to send it: a client trickling header bytes
    (slowloris), or connecting and sending nothing, would hold its connection for ever.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout, self.max_head_bytes = self.head_limits()
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_too_large = False

    def head_limits(self) -> tuple[float, int]:
        settings = get_settings()
        return settings.http_header_timeout, settings.http_max_header_bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        # The first request's deadline runs from the connect; a keep-alive request's from its
        # first byte (until then uvicorn's keep-alive timeout bounds the idle connection).
        if self._head_deadline is None:
            self._arm_head_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # A callback's exception reaches uvicorn as a parser error, answered with a 400.
        if self._head_too_large:
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run/uvicorn.Config keyword arguments for serving the app."""
    trusted = settings.forwarded_allow_ips.strip()
    return {
        # An import string, so `--workers N` can hand it to the worker processes.
        "http": "app.server:EdgeHttpProtocol",
        # uvicorn would otherwise believe X-Forwarded-For from any loopback peer, so a local
        # client could pick the address the login limits count against.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "server_header": False,
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "limit_concurrency": settings.http_limit_concurrency,
        # Used only if uvicorn runs its h11 protocol instead of the one above.
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_graceful_shutdown": 5,
        "access_log": False,
        "log_config": None,
    }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_refusal(settings: Settings, *, host: str, workers: int) -> str | None:
    """Why `zariz serve` must not start with these settings, or None."""
    if settings.jwt_secret == DEV_JWT_SECRET and not is_loopback(host):
        return (
            f"refusing to serve on {host} with the built-in development JWT_SECRET (anyone could "
            "sign tokens): set JWT_SECRET, e.g. "
            "JWT_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if (
        settings.zariz_env is Environment.PRODUCTION
        and workers > 1
        and settings.rate_limit_storage.startswith("memory://")
    ):
        return (
            "refusing --workers > 1 with RATE_LIMIT_STORAGE=memory:// in production (each process "
            "would count failed logins apart): set RATE_LIMIT_STORAGE=redis://host:6379/0"
        )
    return None
