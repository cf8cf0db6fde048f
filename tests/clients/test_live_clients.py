"""The clients over a real uvicorn: the live stream as EventSource reads it, the streamed list."""

import json
from datetime import UTC, datetime

import httpx2 as httpx
import pytest
from sqlalchemy.orm import Session

from app.db.models import Role
from tests.builders import login_tokens, make_store, make_store_user, make_user
from tests.clients.conftest import add_orders
from tests.clients.contract import (
    IOS_ORDER,
    IosApp,
    WebAdmin,
    event_source,
    ipad_order_body,
    swift_decode_array,
    web_admin_onmessage,
)

pytestmark = pytest.mark.slow
TOP_LEVEL = {"store_id", "courier_id", "status", "pickup_address", "boxes_count", "created_at"}
PERSONAL = ("recipient_first_name", "recipient_last_name", "phone", "delivery_address", "street")


def test_new_order_popup_shows_the_pickup_address_and_the_boxes(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    admin_token, _ = login_tokens(committed, make_user(committed, role=Role.ADMIN))
    store_token, _ = login_tokens(committed, make_store_user(committed, store=store))
    with httpx.Client(base_url=live_server) as http, event_source(live_server, admin_token) as es:
        created = IosApp(http, access_token=store_token).create_order(ipad_order_body(boxes=3))
        # NotificationProvider: event "order.created", data.order_id, data.pickup_address;
        # the orders table's new row: data.boxes_count.
        popup = web_admin_onmessage(es.next())
        assert popup["event"] == "order.created"
        data = popup["data"]
        assert data["order_id"] == created["id"]
        assert data["pickup_address"] == store.pickup_address
        assert data["boxes_count"] == 3
        assert data["store_id"] == store.id
        assert (data["status"], data["courier_id"]) == ("new", None)
        assert data["created_at"].startswith(datetime.now(UTC).date().isoformat())
        assert data["order"]["pickup_address"] == store.pickup_address  # and inside `order`
        # Keys the normalisation would prefer to the message itself:
        assert "data" not in data
        assert "event" not in data
        assert es.other_types == []  # no `event:` line: onmessage sees every message
        assert es.content_type.startswith("text/event-stream")


def test_courier_app_live_pool_message_carries_no_recipient(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    admin_token, _ = login_tokens(committed, make_user(committed, role=Role.ADMIN))
    courier_token, _ = login_tokens(committed, make_user(committed, role=Role.COURIER))
    headers = {"Authorization": f"Bearer {courier_token}"}
    with (
        httpx.Client(base_url=live_server) as http,
        event_source(live_server, courier_token, **headers) as es,
    ):
        web = WebAdmin(http, access_token=admin_token)
        body = {**ipad_order_body(boxes=4), "store_id": store.id}
        created = web.api("orders", "POST", body)
        # SSEClient.swift: every `data:` line parsed as a JSON object.
        message = json.loads(es.next().data)
        assert message["order_id"] == created["id"]
        assert set(message) >= TOP_LEVEL
        assert (message["boxes_count"], message["pickup_address"]) == (4, store.pickup_address)
        assert "order" not in message
        assert not set(PERSONAL) & set(message)
        assert "Levi" not in json.dumps(message)


def test_deleted_order_replays_without_its_order_body(committed: Session, live_server: str) -> None:
    store = make_store(committed)
    admin_token, _ = login_tokens(committed, make_user(committed, role=Role.ADMIN))
    with httpx.Client(base_url=live_server) as http:
        web = WebAdmin(http, access_token=admin_token)
        created = web.api("orders", "POST", {**ipad_order_body(), "store_id": store.id})
        web.api(f"orders/{created['id']}", "DELETE")
        # A browser's EventSource resumes with Last-Event-ID; replay starts after 0.
        with event_source(live_server, admin_token, **{"Last-Event-ID": "0"}) as es:
            replayed = [json.loads(es.next().data) for _ in range(2)]
        feed = web.api("events?after=0")["events"]
    assert [m["type"] for m in replayed] == ["order.created", "order.deleted"]
    for message in [*replayed, *feed]:
        assert message["order_id"] == created["id"]
        assert "order" not in message
        assert "Levi" not in json.dumps(message)
        assert message["pickup_address"] == store.pickup_address


def test_orders_table_list_streams_more_than_a_page_over_real_http(
    committed: Session, live_server: str
) -> None:
    store = make_store(committed)
    add_orders(committed, store=store, count=1234)
    admin_token, _ = login_tokens(committed, make_user(committed, role=Role.ADMIN))
    store_token, _ = login_tokens(committed, make_store_user(committed, store=store))
    with httpx.Client(base_url=live_server, timeout=30) as http:
        orders = WebAdmin(http, access_token=admin_token).list_orders()
        assert len(orders) == 1234
        ids = [o["id"] for o in orders]
        assert ids == sorted(ids, reverse=True)
        assert len(set(ids)) == 1234
        synced = swift_decode_array(IOS_ORDER, IosApp(http, access_token=store_token).sync())
        assert len(synced) == 1234
