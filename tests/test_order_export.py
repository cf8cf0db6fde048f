"""GET /v1/orders/export.csv: formula neutralising, bounds, slow readers on a real server."""

import csv
import io
import socket
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.models import Order, Role, Store
from app.services.order_export import LEASES, neutralise
from tests.builders import login_tokens, make_order, make_store, make_user
from tests.orders_helpers import ORDER_BODY, World


def create(client: TestClient, headers: dict[str, str], **fields: object) -> None:
    response = client.post("/v1/orders", json={**ORDER_BODY, **fields}, headers=headers)
    assert response.status_code == 201, response.text


def export_rows(client: TestClient, headers: dict[str, str]) -> list[dict[str, str]]:
    response = client.get("/v1/orders/export.csv", headers=headers)
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


class TestFormulaNeutralising:
    @pytest.mark.parametrize(
        "text",
        [
            "=1+1",
            "+972501234567",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "  =1+1",
            "\uff1d1+1",  # full-width = : Excel reads it as =
            "\uff0b1",
            "\uff0d1",
            "\uff20SUM(A1)",
        ],
    )
    def test_a_cell_that_could_start_a_formula_gets_a_leading_apostrophe(self, text: str) -> None:
        assert neutralise(text) == "'" + text

    @pytest.mark.parametrize("text", ["0501234567", "Noa", "Dizengoff 100", "", "a=b", "3-4"])
    def test_other_cells_are_unchanged(self, text: str) -> None:
        assert neutralise(text) == text

    def test_a_formula_in_the_phone_is_exported_as_text(
        self, client: TestClient, world: World
    ) -> None:
        # Phones are validated as phones now, but "-1+(2)-3" is made of phone characters and is
        # still a formula to Excel.
        create(client, world.h_store, phone="-1+(2)-3")
        (row,) = export_rows(client, world.h_store)
        assert row["phone"] == "'-1+(2)-3"

    def test_a_formula_phone_stored_before_phones_were_validated_is_text(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        order = make_order(db, store=world.store)
        order.phone = "=1+cmd|' /C calc'!A0"
        db.commit()
        (row,) = export_rows(client, world.h_store)
        assert row["phone"] == "'=1+cmd|' /C calc'!A0"

    def test_an_international_phone_keeps_its_digits_behind_one_apostrophe(
        self, client: TestClient, world: World
    ) -> None:
        create(client, world.h_store, phone="+972-50-123-4567")
        create(client, world.h_store, phone="050-123-4567")
        phones = sorted(row["phone"] for row in export_rows(client, world.h_store))
        assert phones == ["'+972-50-123-4567", "050-123-4567"]

    def test_every_text_column_is_neutralised(self, client: TestClient, world: World) -> None:
        create(
            client,
            world.h_store,
            recipient_first_name="@cmd",
            recipient_last_name="-1+1",
            street="=HYPERLINK(1)",
            notes="+1",
        )
        (row,) = export_rows(client, world.h_store)
        assert row["recipient_first_name"] == "'@cmd"
        assert row["recipient_last_name"] == "'-1+1"
        assert row["delivery_address"].startswith("'=HYPERLINK(1)")
        assert row["notes"] == "'+1"


class TestBounds:
    def test_more_orders_than_the_limit_is_422_and_nothing_is_streamed(
        self, client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "export_max_rows", 2)
        for _ in range(3):
            create(client, world.h_store)
        response = client.get("/v1/orders/export.csv", headers=world.h_store)
        assert response.status_code == 422
        assert response.json()["code"] == "export_too_large"
        assert LEASES.open_for(world.store_user.id) == 0

    def test_exactly_the_limit_is_exported(
        self, client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "export_max_rows", 2)
        for _ in range(2):
            create(client, world.h_store)
        assert len(export_rows(client, world.h_store)) == 2

    def test_a_filter_that_narrows_the_export_under_the_limit_is_allowed(
        self, client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "export_max_rows", 1)
        create(client, world.h_store)
        create(client, world.h_store, recipient_first_name="Dana")
        response = client.get("/v1/orders/export.csv", params={"q": "Dana"}, headers=world.h_store)
        assert response.status_code == 200

    def test_one_more_export_than_a_user_may_run_at_once_is_429(
        self, client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(get_settings(), "export_max_per_user", 1)
        release = LEASES.acquire(world.store_user.id, limit=1)  # an export still streaming
        try:
            response = client.get("/v1/orders/export.csv", headers=world.h_store)
            assert response.status_code == 429
            assert response.json()["code"] == "too_many_exports"
            assert response.headers["retry-after"]
            # Another user is not affected.
            assert client.get("/v1/orders/export.csv", headers=world.h_admin).status_code == 200
        finally:
            release()
        assert client.get("/v1/orders/export.csv", headers=world.h_store).status_code == 200

    def test_a_finished_export_gives_its_slot_back(self, client: TestClient, world: World) -> None:
        create(client, world.h_store)
        export_rows(client, world.h_store)
        assert LEASES.open_for(world.store_user.id) == 0

    def test_pages_follow_each_other_without_gaps_or_repeats(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        add_orders(db, world.store, 1203)  # three pages of 500, the last one partial
        rows = export_rows(client, world.h_store)
        ids = [int(r["id"]) for r in rows]
        assert len(ids) == 1203
        assert ids == sorted(set(ids), reverse=True)


# Wide rows: the server's socket buffers (up to 4 MiB on Linux) take a whole small export, and
# only an export larger than them keeps the server waiting on a client that does not read.
NOTE = "Ring twice; the intercom is broken. " * 40


def add_orders(session: Session, store: Store, count: int) -> None:
    """Many orders in one commit (the builder commits each one)."""
    session.add_all(
        Order(
            store_id=store.id,
            status="new",
            pickup_address=store.pickup_address,
            delivery_address=f"Dizengoff {n}, 3, 12, Tel Aviv, a longer address for a wider row",
            recipient_first_name="Noa",
            recipient_last_name=f"Levi {n}",
            phone="+972501234567",
            street="Dizengoff",
            building_no=str(n),
            boxes_count=1,
            boxes_multiplier=1,
            price_total=35,
            notes=NOTE,
        )
        for n in range(count)
    )
    session.commit()


# More than the threadpool (40) and the request session slots (as many).
SLOW_READERS = 60


def request_export(port: int, token: str) -> socket.socket:
    """A client that asks for the export, reads the status line and then never reads again."""
    sock = socket.socket()
    # A small receive window: the server's writes stall after a few pages, as for a slow client.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /v1/orders/export.csv HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
    )
    return sock


@pytest.fixture
def slow_readers() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


@pytest.mark.slow
class TestSlowReaders:
    def test_clients_that_never_read_a_big_export_leave_the_service_answering(
        self, live_server: str, committed: Session, slow_readers: list[socket.socket]
    ) -> None:
        store = make_store(committed)
        add_orders(committed, store, 3000)  # about 4.5 MB of CSV
        # Many users, so the per-user cap on concurrent exports does not refuse any of them.
        tokens = [
            login_tokens(committed, make_user(committed, role=Role.ADMIN))[0]
            for _ in range(SLOW_READERS + 1)
        ]
        port = int(live_server.rsplit(":", 1)[1])
        for token in tokens[:SLOW_READERS]:
            slow_readers.append(request_export(port, token))
        for sock in slow_readers:
            # Every export started (none queued behind the others, none refused).
            assert sock.recv(12) == b"HTTP/1.1 200"
        with httpx.Client(base_url=live_server, timeout=20) as http:
            assert http.get("/health/ready").status_code == 200
            me = http.get(
                "/v1/orders", params={"limit": 1}, headers={"Authorization": f"Bearer {tokens[-1]}"}
            )
            assert me.status_code == 200
            assert len(me.json()) == 1

    def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(
        self,
        live_server: str,
        committed: Session,
        slow_readers: list[socket.socket],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(get_settings(), "export_send_timeout", 0.5)
        store = make_store(committed)
        add_orders(committed, store, 3000)
        user = make_user(committed, role=Role.ADMIN)
        token = login_tokens(committed, user)[0]
        sock = request_export(int(live_server.rsplit(":", 1)[1]), token)
        slow_readers.append(sock)
        assert sock.recv(12) == b"HTTP/1.1 200"
        deadline = time.monotonic() + 20
        while LEASES.open_for(user.id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert LEASES.open_for(user.id) == 0
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        # The connection was closed before the last order was sent.
        assert received.count(b",Levi ") < 3000
