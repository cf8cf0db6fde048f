"""The edge: body caps, security headers, header caps and deadlines, proxy trust, no banner."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.deps import ClientAddress
from app.api.edge import SecurityHeadersMiddleware, body_limit_for
from app.core.config import Settings, get_settings
from app.db.models import User
from app.main import create_app
from app.server import EdgeHttpProtocol, server_options
from tests.live import free_port

MIB = 1024 * 1024


def echo_client_app() -> FastAPI:
    app = create_app()
    router = APIRouter()

    @router.get("/test/client-address")
    async def client_address(client: ClientAddress) -> dict[str, str]:
        return {"client": client}

    app.include_router(router)
    return app


class QuickHeadDeadline(EdgeHttpProtocol):
    def head_limits(self) -> tuple[float, int]:
        return 0.5, get_settings().http_max_header_bytes


@contextmanager
def serving(app: FastAPI, settings: Settings | None = None, **overrides: Any) -> Iterator[int]:
    """The app on a real uvicorn configured as `zariz serve` configures it; yields the port."""
    port = free_port()
    options = {**server_options(settings or get_settings()), **overrides}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def raw_exchange(port: int, payload: bytes) -> bytes:
    """Sends payload, then reads until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def problem_of(response: bytes) -> tuple[str, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.decode("latin-1"), json.loads(body)


class TestBodyLimit:
    @pytest.mark.slow
    def test_a_declared_content_length_over_the_cap_is_refused_before_the_body_is_sent(
        self, committed: Session
    ) -> None:
        with serving(create_app()) as port:
            # Only the head goes out: the 413 must come back without the server reading a body.
            response = raw_exchange(
                port,
                b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
                b"content-length: 104857600\r\n\r\n",
            )
        head, body = problem_of(response)
        assert head.startswith("HTTP/1.1 413")
        assert "content-type: application/problem+json" in head.lower()
        assert body["code"] == "payload_too_large"
        assert body["request_id"]

    @pytest.mark.slow
    def test_a_chunked_body_is_cut_off_at_the_cap(self, committed: Session) -> None:
        chunk = b"x" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        with (
            serving(create_app()) as port,
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ):
            sock.sendall(
                b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for _ in range(MIB // len(chunk)):
                sock.sendall(frame)
            # One byte past the cap, then nothing: the server must answer without waiting for
            # the rest. (The frame's CRLF is held back so the server has read every byte sent
            # when it hangs up; unread bytes would make the kernel reset the connection.)
            sock.sendall(b"1\r\nx")
            response = read_until_closed(sock)
        head, body = problem_of(response)
        assert head.startswith("HTTP/1.1 413")
        assert body["code"] == "payload_too_large"

    def test_an_oversized_body_changes_nothing(self, client: TestClient, db: Session) -> None:
        users = db.scalar(select(func.count()).select_from(User))
        body = {"name": "Big", "email": "big@example.com", "password": "p" * (MIB + 1)}
        response = client.post("/v1/auth/register", json=body)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert db.scalar(select(func.count()).select_from(User)) == users

    def test_a_streamed_body_without_length_is_counted(self, client: TestClient) -> None:
        def stream() -> Iterator[bytes]:
            for _ in range(20):
                yield b" " * 65536

        response = client.post(
            "/v1/auth/login", content=stream(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    def test_a_body_under_the_cap_reaches_the_route(self, client: TestClient) -> None:
        # Half a megabyte of JSON whitespace: well-formed, large, and under the cap.
        padded = json.dumps({"identifier": "nobody@example.com", "password": "x"}) + " " * (
            MIB // 2
        )
        response = client.post(
            "/v1/auth/login", content=padded, headers={"content-type": "application/json"}
        )
        assert response.status_code == 401

    def test_multipart_has_its_own_cap(self) -> None:
        limit = body_limit_for(Settings(max_body_bytes=10, max_multipart_body_bytes=99))
        assert limit("multipart/form-data; boundary=x") == 99
        assert limit("application/json") == 10


class TestSecurityHeaders:
    def test_every_response_has_the_security_headers(self, client: TestClient) -> None:
        for response in (client.get("/health/live"), client.get("/v1/nothing-here")):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
            assert (
                response.headers["content-security-policy"]
                == "default-src 'none'; frame-ancestors 'none'"
            )

    def test_auth_responses_are_not_stored(self, client: TestClient) -> None:
        for response in (
            client.post("/v1/auth/login", json={"identifier": "x@example.com", "password": "p"}),
            client.post("/v1/auth/refresh", json={"refresh_token": "nope"}),
            client.get("/v1/auth/me"),
        ):
            assert response.headers["cache-control"] == "no-store"

    def test_a_token_response_is_not_stored(self, client: TestClient, db: Session) -> None:
        from tests.builders import PASSWORD, make_user

        user = make_user(db, email="nostore@example.com")
        response = client.post(
            "/v1/auth/login", json={"identifier": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200
        assert "access_token" in response.json()
        assert response.headers["cache-control"] == "no-store"

    def test_hsts_only_over_https(self, client: TestClient) -> None:
        assert "strict-transport-security" not in client.get("/health/live").headers
        with TestClient(client.app, base_url="https://testserver") as https:
            assert (
                https.get("/health/live")
                .headers["strict-transport-security"]
                .startswith("max-age=")
            )

    def test_hsts_setting_sends_it_over_http_too(self) -> None:
        async def ok(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        plain = TestClient(SecurityHeadersMiddleware(ok, hsts=True))
        assert "strict-transport-security" in plain.get("/").headers

    @pytest.mark.slow
    def test_the_server_sends_no_banner(self, committed: Session) -> None:
        with serving(create_app()) as port:
            response = httpx.get(f"http://127.0.0.1:{port}/health/live")
        assert response.status_code == 200
        assert "server" not in response.headers


@pytest.mark.slow
class TestConnections:
    def test_an_over_long_header_is_refused_with_431(self, committed: Session) -> None:
        with serving(create_app()) as port:
            response = raw_exchange(
                port,
                b"GET /health/live HTTP/1.1\r\nHost: t\r\nx-big: "
                + b"a" * (get_settings().http_max_header_bytes + 1)
                + b"\r\n\r\n",
            )
        assert response.startswith(b"HTTP/1.1 431")

    def test_a_header_just_under_the_cap_is_served(self, committed: Session) -> None:
        with serving(create_app()) as port:
            response = httpx.get(
                f"http://127.0.0.1:{port}/health/live",
                headers={"x-big": "a" * (get_settings().http_max_header_bytes // 2)},
            )
        assert response.status_code == 200

    def test_an_idle_connection_is_closed_by_the_server(self, committed: Session) -> None:
        with (
            serving(create_app(), http=QuickHeadDeadline) as port,
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ):
            # Nothing sent: the server must hang up on its own (recv returns b"" on close).
            assert sock.recv(1024) == b""

    def test_a_slowly_sent_head_is_cut_off(self, committed: Session) -> None:
        with (
            serving(create_app(), http=QuickHeadDeadline) as port,
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ):
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n")
            assert read_until_closed(sock) == b""

    def test_an_idle_keep_alive_connection_is_closed(self, committed: Session) -> None:
        settings = get_settings().model_copy(update={"http_keep_alive_timeout": 1})
        with (
            serving(create_app(), settings) as port,
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ):
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            response = read_until_closed(sock)
        assert response.startswith(b"HTTP/1.1 200")


@pytest.mark.slow
class TestForwardedFor:
    def test_a_loopback_peer_cannot_choose_its_client_address(self, committed: Session) -> None:
        with serving(echo_client_app()) as port:
            response = httpx.get(
                f"http://127.0.0.1:{port}/test/client-address",
                headers={"x-forwarded-for": "203.0.113.9"},
            )
        assert response.json() == {"client": "127.0.0.1"}

    def test_a_named_proxy_is_believed(self, committed: Session) -> None:
        settings = get_settings().model_copy(update={"forwarded_allow_ips": "127.0.0.1"})
        with serving(echo_client_app(), settings) as port:
            response = httpx.get(
                f"http://127.0.0.1:{port}/test/client-address",
                headers={"x-forwarded-for": "203.0.113.9"},
            )
        assert response.json() == {"client": "203.0.113.9"}
