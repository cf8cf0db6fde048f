"""The web admin (web-admin-v2), screen by screen: each test makes one call the way it does."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Order, Role, Store, User, UserSession
from tests.builders import PASSWORD, auth_headers, make_order, make_store, make_user
from tests.clients.conftest import World, add_orders
from tests.clients.contract import ClientError, WebAdmin, js_reads, jwt_claims

ORDER_ROW = {  # what the orders table and the overview read of each order
    "id": "number",
    "status": "string",
    "boxes_count": "number",
    "store_id": "number",
    "courier_id": "number|null",
    "created_at": "string",
}


def _live_sessions(db: Session, user: User) -> int:
    db.expire_all()
    rows = db.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    )
    return len(list(rows))


# ---- sign-in, reload, refresh-on-401


def test_sign_in_keeps_the_access_token_and_reads_the_admin_role(
    client: TestClient, db: Session
) -> None:
    admin = make_user(db, role=Role.ADMIN, email="dispatch@zariz.example")
    app = WebAdmin(client)
    app.login("dispatch@zariz.example", PASSWORD)
    claims = app.claims()  # setAccessToken(): parseJwt, then "admin-only"
    assert claims["role"] == "admin"
    assert claims["sub"] == str(admin.id)
    assert isinstance(claims["exp"], int)
    assert app.refresh_token


def test_any_call_after_the_access_token_expires_refreshes_once_and_retries(
    web_admin: WebAdmin,
) -> None:
    web_admin.access_token = "expired.or.garbage"
    assert web_admin.list_orders() == []
    assert web_admin.refreshes == 1
    assert jwt_claims(web_admin.access_token)["role"] == "admin"


def test_sign_out_answers_json(web_admin: WebAdmin) -> None:
    web_admin.logout()
    with pytest.raises(ClientError):
        web_admin.refresh()


# ---- overview and orders table (item 1: lists stop at 100)


def test_overview_total_orders_counts_all_130_orders(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    add_orders(db, store=world.store, count=130)
    orders = web_admin.list_orders()  # listOrders(): no params, no limit
    stores = web_admin.api("admin/stores")
    couriers = web_admin.api("admin/couriers")
    assert len(orders) == 130
    for order in orders:
        js_reads(order, **ORDER_ROW)
    assert [js_reads(s, status="string", name="string") for s in stores]
    assert len(couriers) == 2
    assert all(c["status"] == "active" for c in couriers)


def test_orders_table_shows_every_order_the_filters_select(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    oldest = add_orders(db, store=world.store, count=1, status="assigned", courier=world.courier)
    add_orders(db, store=world.store, count=130)
    other = make_store(db)
    add_orders(db, store=other, count=5)
    everything = web_admin.list_orders({})  # the page with no filter set: `orders?`
    assert len(everything) == 136
    assert everything[-1]["id"] == oldest[0].id  # newest first, the oldest not cut off
    by_store = web_admin.list_orders({"store": str(world.store.id)})
    assert len(by_store) == 131
    new_only = web_admin.list_orders({"status": "new", "store": str(world.store.id)})
    assert len(new_only) == 130
    mine = web_admin.list_orders({"courier": str(world.courier.id)})
    assert [o["id"] for o in mine] == [oldest[0].id]


def test_api_clients_that_send_limit_still_get_cursor_pages(
    client: TestClient, db: Session, world: World
) -> None:
    add_orders(db, store=world.store, count=130)
    headers = auth_headers(db, world.admin)
    page = client.get("/v1/orders?limit=100", headers=headers)
    assert len(page.json()) == 100
    rest = client.get(f"/v1/orders?cursor={page.headers['X-Next-Cursor']}", headers=headers)
    assert len(rest.json()) == 30
    assert "X-Next-Cursor" not in rest.headers


def test_orders_table_cancel_with_an_empty_prompt_cancels_without_a_reason(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="assigned", courier=world.courier)
    # handleCancel(): `prompt('Cancel reason?') || ''`
    canceled = web_admin.api(f"orders/{order.id}/cancel", "POST", {"reason": ""})
    assert canceled["status"] == "canceled"
    assert canceled["cancel_reason"] is None


@pytest.mark.parametrize("body", [{}, None, {"reason": "   "}])
def test_store_cancel_without_a_reason_is_allowed(
    client: TestClient, db: Session, world: World, body: dict[str, str] | None
) -> None:
    order = make_order(db, store=world.store)
    response = client.post(
        f"/v1/orders/{order.id}/cancel", json=body, headers=auth_headers(db, world.store_user)
    )
    assert response.status_code == 200, response.text
    assert response.json()["cancel_reason"] is None


def test_orders_table_cancel_with_a_reason_keeps_it(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    canceled = web_admin.api(f"orders/{order.id}/cancel", "POST", {"reason": "Customer called"})
    assert canceled["cancel_reason"] == "Customer called"


def test_assign_dialog_lists_available_couriers_and_assigns(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    couriers = web_admin.api("couriers?available_only=1")  # getCouriers(true)
    for courier in couriers:
        js_reads(
            courier,
            id="number",
            name="string",
            capacity_boxes="number",
            load_boxes="number",
            available_boxes="number",
        )
    assigned = web_admin.api(f"orders/{order.id}/assign", "POST", {"courier_id": couriers[0]["id"]})
    assert assigned["status"] == "assigned"


def test_orders_table_delete_answers_json(web_admin: WebAdmin, db: Session, world: World) -> None:
    order = make_order(db, store=world.store)
    assert web_admin.api(f"orders/{order.id}", "DELETE") == {"id": order.id, "deleted": True}


def test_new_order_dialog_creates_an_order(web_admin: WebAdmin, world: World) -> None:
    # new-order-dialog.tsx: empty optional inputs become `undefined`, so they are left out.
    created = web_admin.api(
        "orders",
        "POST",
        {
            "store_id": world.store.id,
            "recipient_first_name": "Noa",
            "recipient_last_name": "Levi",
            "phone": "0501234567",
            "street": "Dizengoff",
            "building_no": "100",
            "boxes_count": 3,
        },
    )
    js_reads(created, id="number", pickup_address="string", status="string")
    assert created["pickup_address"] == world.store.pickup_address


def test_view_order_dialog_save_sends_back_the_whole_order(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store)
    form = web_admin.api(f"orders/{order.id}")  # setFormData(data): the whole object
    form.update(boxes_count=9, status="claimed")  # the dialog's status select is not applied
    saved = web_admin.api(f"orders/{order.id}", "PATCH", form)
    assert saved["boxes_count"] == 9
    assert saved["price_total"] == 70
    assert saved["status"] == "new"


def test_view_order_dialog_save_of_an_order_without_pickup_address(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    bare = Store(name="No Address Deli", status="active")
    db.add(bare)
    db.commit()
    created = web_admin.api(
        "orders",
        "POST",
        {
            "store_id": bare.id,
            "recipient_first_name": "Noa",
            "recipient_last_name": "Levi",
            "phone": "0501234567",
            "street": "Dizengoff",
            "building_no": "100",
        },
    )
    assert created["pickup_address"] is None  # the store has none and the order gave none
    form = {**created, "pickup_address": "", "notes": "ring twice"}  # an emptied input
    saved = web_admin.api(f"orders/{created['id']}", "PATCH", form)
    assert saved["notes"] == "ring twice"
    assert saved["pickup_address"] is None


# ---- couriers (item 2: edits that answer 200 and change nothing)


def test_courier_form_save_applies_every_field(
    web_admin: WebAdmin, db: Session, world: World
) -> None:
    courier = world.courier
    form = web_admin.api(f"admin/couriers/{courier.id}")
    saved = web_admin.api(
        f"admin/couriers/{courier.id}",
        "PATCH",
        {
            "name": "Moshe Cohen",
            "email": "moshe@zariz.example",
            "phone": "+972 50-765-4321",
            "capacity_boxes": 12,
            "status": form["status"],
        },
    )
    again = web_admin.api(f"admin/couriers/{courier.id}")
    assert again == saved
    assert (saved["name"], saved["email"], saved["phone"], saved["capacity_boxes"]) == (
        "Moshe Cohen",
        "moshe@zariz.example",
        "+972507654321",
        12,
    )


def test_courier_form_status_suspended_ends_the_couriers_sessions(
    web_admin: WebAdmin, client: TestClient, db: Session, world: World
) -> None:
    courier_headers = auth_headers(db, world.courier)
    saved = web_admin.api(
        f"admin/couriers/{world.courier.id}",
        "PATCH",
        {
            "name": world.courier.name,
            "email": "",
            "phone": "",
            "capacity_boxes": 8,
            "status": "suspended",
        },
    )
    assert saved["status"] == "suspended"
    assert _live_sessions(db, world.courier) == 0
    assert client.get("/v1/auth/me", headers=courier_headers).status_code == 401
    back = web_admin.api(f"admin/couriers/{world.courier.id}", "PATCH", {"status": "active"})
    assert back["status"] == "active"


def test_edit_courier_dialog_blank_email_and_phone_keep_the_stored_ones(
    web_admin: WebAdmin, world: World
) -> None:
    before = web_admin.api(f"admin/couriers/{world.courier.id}")
    saved = web_admin.api(
        f"admin/couriers/{world.courier.id}",
        "PATCH",
        {"name": "Renamed", "email": "", "phone": "", "capacity_boxes": 8, "status": "active"},
    )
    assert saved["email"] == before["email"]
    assert saved["name"] == "Renamed"


def test_courier_form_a_field_the_api_cannot_apply_is_a_422_naming_it(
    web_admin: WebAdmin, world: World
) -> None:
    with pytest.raises(ClientError) as refused:
        web_admin.api(
            f"admin/couriers/{world.courier.id}", "PATCH", {"name": "X", "vehicle": "bike"}
        )
    assert refused.value.status == 422
    problem = refused.value.response.json()
    assert any("vehicle" in error["loc"] for error in problem["errors"])
    assert web_admin.api(f"admin/couriers/{world.courier.id}")["name"] == world.courier.name


def test_courier_form_pending_status_is_a_422(web_admin: WebAdmin, world: World) -> None:
    with pytest.raises(ClientError) as refused:
        web_admin.api(f"admin/couriers/{world.courier.id}", "PATCH", {"status": "pending"})
    assert refused.value.status == 422


def test_courier_form_email_of_another_user_is_a_409(web_admin: WebAdmin, world: World) -> None:
    with pytest.raises(ClientError) as refused:
        web_admin.api(
            f"admin/couriers/{world.courier.id}", "PATCH", {"email": world.other_courier.email}
        )
    assert refused.value.status == 409


def test_new_courier_form_applies_every_field(web_admin: WebAdmin) -> None:
    created = web_admin.api(
        "admin/couriers",
        "POST",
        {
            "name": "Dana",
            "email": "dana@zariz.example",
            "phone": "",
            "capacity_boxes": 10,
            "status": "suspended",
            "password": "dana password 1",
        },
    )
    assert (created["status"], created["capacity_boxes"], created["phone"]) == (
        "suspended",
        10,
        None,
    )


def test_edit_courier_dialog_new_password_goes_through_credentials(
    web_admin: WebAdmin, client: TestClient, world: World
) -> None:
    web_admin.api(f"admin/couriers/{world.courier.id}", "PATCH", {"name": "Same"})
    web_admin.api(
        f"admin/couriers/{world.courier.id}/credentials", "POST", {"password": "brand new pass"}
    )
    login = client.post(
        "/v1/auth/login", json={"identifier": world.courier.email, "password": "brand new pass"}
    )
    assert login.status_code == 200


def test_couriers_page_status_menu(web_admin: WebAdmin, world: World) -> None:
    listed = web_admin.api("admin/couriers")
    for courier in listed:
        js_reads(courier, id="number", name="string", status="string", capacity_boxes="number")
    done = web_admin.api(
        f"admin/couriers/{world.courier.id}/status", "POST", {"status": "offboarded"}
    )
    assert done["status"] == "offboarded"


# ---- stores (items 2 and 4)


def test_new_store_form_without_a_pickup_address_creates_the_store(web_admin: WebAdmin) -> None:
    # stores/[id]/page.tsx with id "new": the whole form, inputs left empty as "".
    created = web_admin.api(
        "admin/stores",
        "POST",
        {"name": "Bakery", "status": "active", "pickup_address": "", "hours_text": ""},
    )
    assert created["pickup_address"] is None
    assert created["hours_text"] is None
    assert web_admin.api(f"admin/stores/{created['id']}")["name"] == "Bakery"


def test_new_store_form_applies_status(web_admin: WebAdmin) -> None:
    created = web_admin.api(
        "admin/stores",
        "POST",
        {"name": "Florist", "status": "suspended", "pickup_address": "Herzl 5", "hours_text": ""},
    )
    assert created["status"] == "suspended"
    assert web_admin.api(f"admin/stores/{created['id']}")["status"] == "suspended"


def test_store_form_save_applies_status_and_ends_the_store_accounts_sessions(
    web_admin: WebAdmin, client: TestClient, db: Session, world: World
) -> None:
    store_headers = auth_headers(db, world.store_user)
    form = web_admin.api(f"admin/stores/{world.store.id}")
    form = {k: form[k] for k in ("name", "status", "pickup_address", "box_limit", "hours_text")}
    saved = web_admin.api(
        f"admin/stores/{world.store.id}",
        "PATCH",
        {**form, "status": "suspended", "box_limit": 30, "hours_text": "9-17"},
    )
    assert (saved["status"], saved["box_limit"], saved["hours_text"]) == ("suspended", 30, "9-17")
    assert _live_sessions(db, world.store_user) == 0
    assert client.get("/v1/auth/me", headers=store_headers).status_code == 401


def test_edit_store_dialog_emptied_pickup_address_clears_it(
    web_admin: WebAdmin, world: World
) -> None:
    saved = web_admin.api(
        f"admin/stores/{world.store.id}",
        "PATCH",
        {"name": world.store.name, "status": "active", "pickup_address": "", "hours_text": ""},
    )
    assert saved["pickup_address"] is None
    assert saved["status"] == "active"


def test_store_form_a_field_the_api_cannot_apply_is_a_422_naming_it(
    web_admin: WebAdmin, world: World
) -> None:
    with pytest.raises(ClientError) as refused:
        web_admin.api(f"admin/stores/{world.store.id}", "PATCH", {"logo_url": "x"})
    assert refused.value.status == 422
    assert any("logo_url" in e["loc"] for e in refused.value.response.json()["errors"])


def test_stores_page_status_menu(web_admin: WebAdmin, world: World) -> None:
    for store in web_admin.api("admin/stores"):
        js_reads(store, id="number", name="string", status="string")
    done = web_admin.api(f"admin/stores/{world.store.id}/status", "POST", {"status": "suspended"})
    assert done["status"] == "suspended"


def test_edit_store_dialog_credentials_create_the_store_account(
    web_admin: WebAdmin, db: Session
) -> None:
    store = make_store(db)
    owner = web_admin.api(
        f"admin/stores/{store.id}/credentials",
        "POST",
        {"email": "owner@bakery.example", "phone": "", "password": "owner password"},
    )
    assert owner["store_ids"] == [store.id]


def test_orders_of_a_store_without_a_pickup_address_fall_back_to_none(
    web_admin: WebAdmin, db: Session
) -> None:
    store = web_admin.api("admin/stores", "POST", {"name": "Kiosk", "pickup_address": ""})
    body = {
        "store_id": store["id"],
        "recipient_first_name": "Noa",
        "recipient_last_name": "Levi",
        "phone": "0501234567",
        "street": "Dizengoff",
        "building_no": "100",
    }
    assert web_admin.api("orders", "POST", body)["pickup_address"] is None
    own = web_admin.api("orders", "POST", {**body, "pickup_address": "Back door, Herzl 3"})
    assert own["pickup_address"] == "Back door, Herzl 3"
    assert db.get(Order, own["id"]) is not None


def test_courier_form_is_refused_to_a_courier(
    client: TestClient, db: Session, world: World
) -> None:
    response = client.patch(
        f"/v1/admin/couriers/{world.courier.id}",
        json={"status": "active"},
        headers=auth_headers(db, world.courier),
    )
    assert response.status_code == 403
