"""What the real clients send and how they read the answers: the web admin and the iOS app.

Each helper mirrors one client's networking code (web-admin-v2 `src/lib/api.ts`, the Next.js
auth proxy routes, `src/lib/sse-client.ts`; the iOS app's `OrdersService.swift`,
`AuthService.swift`, `PushManager.swift`, `SSEClient.swift`): the same headers, the same
bodies, and decoding as strict as the client's (Swift's `JSONDecoder`, the fields a page reads).
"""

import base64
import contextlib
import json
import queue
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2 as httpx


class Http(Protocol):
    """httpx.Client and Starlette's TestClient alike."""

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = ...,
        headers: Mapping[str, str] | None = ...,
    ) -> httpx.Response: ...


class ClientError(Exception):
    """What the client does with a non-2xx: throws (web admin) or gives up (iOS)."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"{response.status_code} {response.text[:300]}")
        self.response = response
        self.status = response.status_code


def json_body(response: httpx.Response) -> Any:
    """Both clients parse the body of every 2xx as JSON (`res.json()`, `JSONDecoder`)."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return json.loads(response.content)


# ---- Swift Codable, as strict as JSONDecoder: a required key missing or null, or a value of
# the wrong type, fails the whole decode (and with it the whole list).

SwiftSpec = Mapping[str, tuple[str, bool]]  # key -> (Swift type, optional)


def _swift_type_ok(kind: str, value: Any) -> bool:
    if kind == "Int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "Double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "String":
        return isinstance(value, str)
    if kind == "Bool":
        return isinstance(value, bool)
    if kind == "[Int]":
        return isinstance(value, list) and all(_swift_type_ok("Int", v) for v in value)
    if kind == "Object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown Swift type {kind}")


def swift_decode(spec: SwiftSpec, value: Any, where: str = "$") -> dict[str, Any]:
    assert isinstance(value, dict), f"{where}: expected an object, got {type(value).__name__}"
    for key, (kind, optional) in spec.items():
        present = value.get(key)
        if present is None:
            assert optional, (
                f"{where}.{key}: required {kind}, got {'null' if key in value else 'nothing'}"
            )
            continue
        assert _swift_type_ok(kind, present), f"{where}.{key}: expected {kind}, got {present!r}"
    return value


def swift_decode_array(spec: SwiftSpec, value: Any) -> list[dict[str, Any]]:
    assert isinstance(value, list), f"expected an array, got {type(value).__name__}"
    return [swift_decode(spec, item, f"$[{i}]") for i, item in enumerate(value)]


# OrdersService.swift `OrderDTO`
IOS_ORDER: SwiftSpec = {
    "id": ("Int", False),
    "store_id": ("Int", False),
    "courier_id": ("Int", True),
    "status": ("String", False),
    "pickup_address": ("String", True),
    "delivery_address": ("String", True),
    "recipient_first_name": ("String", True),
    "recipient_last_name": ("String", True),
    "phone": ("String", True),
    "street": ("String", True),
    "building_no": ("String", True),
    "floor": ("String", True),
    "apartment": ("String", True),
    "boxes_count": ("Int", True),
    "boxes_multiplier": ("Int", True),
    "price_total": ("Double", True),
}

# The login/refresh answer as DESIGN §4 gives it to the app.
IOS_TOKENS: SwiftSpec = {
    "access_token": ("String", False),
    "refresh_token": ("String", False),
    "token_type": ("String", False),
    "expires_in": ("Int", False),
    "refresh_expires_in": ("Int", False),
    "user": ("Object", False),
}
IOS_USER: SwiftSpec = {
    "id": ("Int", False),
    "role": ("String", False),
    "name": ("String", False),
    "store_ids": ("[Int]", False),
}


# ---- TypeScript: no runtime checks, but each page reads certain keys as certain JS types.

JS = {"number": (int, float), "string": (str,), "boolean": (bool,), "null": (type(None),)}


def js_reads(value: Any, **fields: str) -> dict[str, Any]:
    """Asserts the object has each key the page reads, of the JS type(s) given ("number|null")."""
    assert isinstance(value, dict), value
    for key, kinds in fields.items():
        assert key in value, f"the page reads `{key}`, missing from {sorted(value)}"
        allowed = tuple(t for kind in kinds.split("|") for t in JS[kind])
        ok = isinstance(value[key], allowed) and not (
            isinstance(value[key], bool) and bool not in allowed
        )
        assert ok, f"`{key}` is {value[key]!r}, the page expects {kinds}"
    return value


def jwt_claims(token: str) -> dict[str, Any]:
    """auth-client.ts parseJwt(): base64url of the payload, no verification."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload))
    return claims


# ---- The web admin


@dataclass
class WebAdmin:
    """src/lib/api.ts `api()` behind the Next.js auth proxy (src/app/api/auth/*/route.ts).

    Every call sends `Content-Type: application/json` and the Bearer token; a 401 refreshes once
    (the proxy posts the refresh-token cookie to /v1/auth/refresh) and retries; a non-2xx
    throws; every 2xx goes through `res.json()`.
    """

    http: Http
    access_token: str = ""
    refresh_token: str = ""
    refreshes: int = 0

    def login(self, identifier: str, password: str) -> dict[str, Any]:
        # api/auth/login/route.ts: POST /v1/auth/login_password, keeps both tokens.
        response = self._send(
            "POST",
            "auth/login_password",
            {"identifier": identifier, "password": password},
            auth=False,
        )
        if not response.is_success:
            raise ClientError(response)
        data: dict[str, Any] = json_body(response)
        self.access_token, self.refresh_token = data["access_token"], data["refresh_token"]
        return data

    def refresh(self) -> None:
        # api/auth/refresh/route.ts: the cookie's refresh token, the new pair kept.
        response = self._send(
            "POST", "auth/refresh", {"refresh_token": self.refresh_token}, auth=False
        )
        if not response.is_success:
            raise ClientError(response)
        data = json_body(response)
        self.access_token = data["access_token"]
        self.refresh_token = data.get("refresh_token") or self.refresh_token
        self.refreshes += 1

    def logout(self) -> None:
        # api/auth/logout/route.ts: best effort, the answer is not read.
        self._send("POST", "auth/logout", {"refresh_token": self.refresh_token}, auth=False)

    def claims(self) -> dict[str, Any]:
        return jwt_claims(self.access_token)

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        response = self._send(method, path, body)
        if response.status_code == 401:
            try:
                self.refresh()
                response = self._send(method, path, body)
            except ClientError:
                pass
        if not response.is_success:
            raise ClientError(response)
        return json_body(response)

    def _send(self, method: str, path: str, body: Any, *, auth: bool = True) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if auth and self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        content = None if body is None else json.dumps(body).encode()
        return self.http.request(method, f"/v1/{path}", content=content, headers=headers)

    # The calls of src/lib/api.ts, by name.
    def list_orders(self, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        # `?${new URLSearchParams(params)}` when params is given, even empty.
        query = "" if params is None else "?" + "&".join(f"{k}={v}" for k, v in params.items())
        orders = self.api(f"orders{query}")
        assert isinstance(orders, list), "the pages call orders.filter/map: an array"
        return orders


# ---- The iOS app


@dataclass
class IosApp:
    """OrdersService.swift / AuthService.swift / PushManager.swift.

    `authorizedRequest`: the Bearer token, `Content-Type: application/json` only with a body,
    an `Idempotency-Key` (a fresh UUID) on every write. A status >= 400 is failure; bodies are
    decoded with JSONDecoder where the app reads them.
    """

    http: Http
    access_token: str = ""
    refresh_token: str = ""

    def request(
        self, method: str, path: str, body: Any = None, *, idempotent: bool = False
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        if idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4()).upper()  # Swift's UUID().uuidString
        return self.http.request(method, f"/v1/{path}", content=content, headers=headers)

    def login(self, identifier: str, password: str) -> dict[str, Any]:
        response = self.request(
            "POST", "auth/login", {"identifier": identifier, "password": password}
        )
        if response.status_code >= 400:
            raise ClientError(response)
        data = swift_decode(IOS_TOKENS, json_body(response))
        swift_decode(IOS_USER, data["user"], "$.user")
        self.access_token, self.refresh_token = data["access_token"], data["refresh_token"]
        return data

    def refresh(self) -> dict[str, Any]:
        saved, self.access_token = self.access_token, ""
        try:
            response = self.request("POST", "auth/refresh", {"refresh_token": self.refresh_token})
        finally:
            self.access_token = saved
        if response.status_code >= 400:
            raise ClientError(response)
        data = swift_decode(IOS_TOKENS, json_body(response))
        self.access_token, self.refresh_token = data["access_token"], data["refresh_token"]
        return data

    def sync(self) -> list[dict[str, Any]]:
        """OrdersService.sync(): GET orders, `[OrderDTO]`; the cache keeps only these."""
        response = self.request("GET", "orders")
        if response.status_code >= 400:
            raise ClientError(response)
        return swift_decode_array(IOS_ORDER, json_body(response))

    def action(self, path: str, body: Any = None) -> Any:
        """claim / decline / status: POST with an Idempotency-Key; the app then syncs."""
        response = self.request("POST", path, body, idempotent=True)
        if response.status_code >= 400:
            raise ClientError(response)
        return json_body(response)

    def create_order(self, payload: Mapping[str, Any]) -> Any:
        response = self.request("POST", "orders", dict(payload), idempotent=True)
        if response.status_code >= 400:
            raise ClientError(response)
        return json_body(response)


def ipad_order_body(
    *,
    pickup_address: str = "",
    street: str = "Dizengoff",
    building: str = "100",
    floor: str = "",
    apartment: str = "",
    boxes: int = 2,
) -> dict[str, Any]:
    """NewOrderView -> OrderCreatePayload.toDTO() as JSONEncoder writes it: nil keys left out
    (store_id always, floor and apartment when empty), pickup_address always (maybe "")."""
    street_line = " ".join(p for p in (street, building) if p.strip())
    details = ", ".join(p for p in (floor, apartment) if p.strip())
    body: dict[str, Any] = {
        "pickup_address": pickup_address,
        "delivery_address": ", ".join(p for p in (street_line, details) if p),
        "recipient_first_name": "Noa",
        "recipient_last_name": "Levi",
        "phone": "0501234567",
        "street": street,
        "building_no": building,
        "boxes_count": boxes,
    }
    if floor:
        body["floor"] = floor
    if apartment:
        body["apartment"] = apartment
    return body


# ---- A browser's EventSource (the WHATWG parsing rules), driven by the web admin's handlers


@dataclass
class MessageEvent:
    type: str
    data: str
    last_event_id: str


@dataclass
class EventSource:
    """`new EventSource(url)` reading a real stream in a thread, over a plain HTTP/1.1 socket.

    Fields per the HTML standard: `data:` lines joined by newlines, `id:` sets the last event
    id, `event:` sets the type; only type "message" reaches `onmessage` (what the web admin
    listens to), comments and `retry:` dispatch nothing. A socket of its own, not httpx, so
    that close() ends the connection at once, as `es.close()` does in a browser.
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    messages: "queue.Queue[MessageEvent | None]" = field(default_factory=queue.Queue)
    other_types: list[str] = field(default_factory=list)
    status: int | None = None
    content_type: str = ""

    def __post_init__(self) -> None:
        parsed = httpx.URL(self.url)
        self._sock = socket.create_connection((parsed.host, parsed.port or 80), timeout=30)
        target = parsed.raw_path.decode()
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {parsed.host}:{parsed.port}",
            "Accept: text/event-stream",
            "Cache-Control: no-cache",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._file = self._sock.makefile("rb")
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "stream did not open"

    def _chunks(self) -> Iterator[bytes]:
        """The body of a chunked HTTP/1.1 response, chunk by chunk."""
        while True:
            size_line = self._file.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            chunk = self._file.read(size)
            self._file.readline()  # the CRLF after the chunk
            yield chunk

    def _run(self) -> None:
        try:
            status_line = self._file.readline().decode()
            self.status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := self._file.readline().decode().strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.content_type = headers.get("content-type", "")
            if self.status != 200:
                return
            assert headers.get("transfer-encoding") == "chunked", headers
            buffer = b""
            data: list[str] = []
            event_type, last_id = "", ""
            for chunk in self._chunks():
                self._opened.set()
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.decode().rstrip("\r")
                    if line == "":
                        if data:
                            kind = event_type or "message"
                            event = MessageEvent(kind, "\n".join(data), last_id)
                            if kind == "message":
                                self.messages.put(event)
                            else:
                                self.other_types.append(kind)
                        data, event_type = [], ""
                        continue
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        data.append(value)
                    elif name == "event":
                        event_type = value
                    elif name == "id":
                        last_id = value
        except (OSError, ValueError):
            pass  # the socket closed under the reader: the stream is over
        finally:
            self._opened.set()
            self.messages.put(None)

    def next(self, timeout: float = 10) -> MessageEvent:
        event = self.messages.get(timeout=timeout)
        assert event is not None, "the stream ended"
        return event

    def close(self) -> None:
        """`es.close()`: the connection goes at once, so the server sees the client leave."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._file.close()
        self._sock.close()


def web_admin_onmessage(event: MessageEvent) -> dict[str, Any]:
    """sse-client.ts `es.onmessage`: `{event: raw.event || raw.type, data: raw.data || raw}`."""
    raw = json.loads(event.data)
    return {"event": raw.get("event") or raw.get("type"), "data": raw.get("data") or raw}


@contextmanager
def event_source(base_url: str, token: str, **headers: str) -> Iterator[EventSource]:
    # sse-client.ts: `${API_BASE}/events/sse?token=${token}` (EventSource sends no headers).
    source = EventSource(f"{base_url}/v1/events/sse?token={token}", headers=dict(headers))
    try:
        yield source
    finally:
        source.close()
