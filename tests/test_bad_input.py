"""Bad input is a 4xx that changes nothing: unstorable text, edge dates, odd tokens, phones."""

import importlib
import json
import pkgutil
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import app.schemas as app_schemas
from app.db.models import Order, Store, User
from app.schemas.common import RequestModel
from tests.builders import PASSWORD, make_order, make_user
from tests.orders_helpers import ORDER_BODY, World

NUL = "\x00"
SURROGATE = "\ud800"


def counts(db: Session) -> tuple[int, int, int]:
    return (
        db.scalar(select(func.count()).select_from(User)) or 0,
        db.scalar(select(func.count()).select_from(Store)) or 0,
        db.scalar(select(func.count()).select_from(Order)) or 0,
    )


def assert_names_field(response: Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["code"] == "validation_error"
    assert any(field in err["loc"] for err in body["errors"]), body["errors"]
    # The bad value itself is never echoed back.
    assert NUL not in response.text
    assert "\\u0000" not in response.text


# (method, path, the body's other fields, the field that gets the NUL) per body that reaches the
# database; {order} is an order of the world's store, {courier} a courier, {store} the store.
BODIES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("anon", "POST /v1/auth/register", {"email": "a@b.c", "password": "long enough"}, "name", ""),
    ("anon", "POST /v1/auth/login", {"password": PASSWORD}, "identifier", "x@example.com"),
    ("anon", "POST /v1/auth/refresh", {}, "refresh_token", "1.secret"),
    ("store", "POST /v1/orders", ORDER_BODY, "recipient_first_name", "Noa"),
    ("store", "POST /v1/orders", ORDER_BODY, "notes", "ring twice"),
    ("store", "POST /v1/orders", ORDER_BODY, "phone", "050-123 4567"),
    ("store", "PATCH /v1/orders/{order}", {}, "street", "Herzl"),
    ("store", "POST /v1/orders/{order}/cancel", {}, "reason", "customer called"),
    ("courier", "POST /v1/devices/register", {}, "app_version", "1.2.3"),
    ("courier", "POST /v1/devices/register", {}, "token", "ab" * 32),
    ("admin", "POST /v1/admin/couriers", {"password": "long enough"}, "name", "Dan"),
    ("admin", "PATCH /v1/admin/couriers/{courier}", {}, "name", "Dan"),
    ("admin", "POST /v1/admin/couriers/{courier}/credentials", {}, "email", "d@example.com"),
    ("admin", "POST /v1/admin/stores", {"pickup_address": "Herzl 1"}, "name", "Bakery"),
    ("admin", "PATCH /v1/admin/stores/{store}", {}, "hours_text", "9-17"),
    (
        "admin",
        "POST /v1/admin/stores/{store}/users",
        {"email": "s@example.com", "password": "long enough"},
        "name",
        "Staff",
    ),
]


def _send(
    client: TestClient, db: Session, world: World, who: str, route: str, body: dict[str, Any]
) -> Response:
    method, path = route.split(" ")
    order = make_order(db, store=world.store)
    path = path.format(order=order.id, courier=world.courier.id, store=world.store.id)
    headers = {
        "anon": {},
        "store": world.h_store,
        "courier": world.h_courier,
        "admin": world.h_admin,
    }[who]
    content = json.dumps(body)  # escapes NUL and lone surrogates as \\u0000 and \\ud800
    response: Response = client.request(
        method, path, content=content, headers={**headers, "content-type": "application/json"}
    )
    return response


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("who", "route", "rest", "field", "good"), BODIES, ids=[f"{b[1]}:{b[3]}" for b in BODIES]
)
def test_text_the_database_cannot_store_is_422_naming_the_field(
    client: TestClient,
    db: Session,
    world: World,
    who: str,
    route: str,
    rest: dict[str, Any],
    field: str,
    good: str,
    bad: str,
) -> None:
    before = counts(db)
    body = {**rest, field: f"{good[:1]}{bad}{good[1:]}"}
    assert_names_field(_send(client, db, world, who, route, body), field)
    assert counts(db) == (before[0], before[1], before[2] + 1)  # +1: the order _send made


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def test_every_request_body_refuses_unstorable_text(app: FastAPI) -> None:
    # The mechanism behind the test above: a body model that is not a RequestModel would let NUL
    # through to the driver, so a new route cannot forget it.
    models = {
        name: model
        for module_info in pkgutil.iter_modules(app_schemas.__path__)
        for name, model in vars(importlib.import_module(f"app.schemas.{module_info.name}")).items()
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    operations = [op for ops in app.openapi()["paths"].values() for op in ops.values()]
    bodies = set().union(*(_refs(op["requestBody"]) for op in operations if "requestBody" in op))
    assert len(bodies) > 15
    assert not [name for name in bodies if not issubclass(models[name], RequestModel)]


class TestQueryAndPathText:
    @pytest.mark.parametrize("param", ["q", "from", "to", "status"])
    @pytest.mark.parametrize("path", ["/v1/orders", "/v1/orders/export.csv"])
    def test_nul_in_a_filter_is_422_naming_it(
        self, client: TestClient, world: World, path: str, param: str
    ) -> None:
        response = client.get(path, params={param: f"a{NUL}b"}, headers=world.h_admin)
        assert_names_field(response, param)

    def test_nul_in_the_device_token_path_is_422(self, client: TestClient, world: World) -> None:
        response = client.delete("/v1/devices/ab%00cd", headers=world.h_courier)
        assert_names_field(response, "token")

    def test_an_unknown_status_is_422_without_echoing_it(
        self, client: TestClient, world: World
    ) -> None:
        response = client.get(
            "/v1/orders", params={"status": "new,<b>x</b>"}, headers=world.h_admin
        )
        assert response.status_code == 422
        assert "<b>x</b>" not in response.text
        assert "delivered" in response.json()["detail"]

    def test_plain_search_still_works(self, client: TestClient, world: World) -> None:
        response = client.get("/v1/orders", params={"q": "Noa"}, headers=world.h_admin)
        assert response.status_code == 200, response.text


class TestDateBounds:
    @pytest.mark.parametrize(
        ("param", "value"),
        [
            ("to", "9999-12-31"),
            ("from", "9999-12-31"),
            ("from", "0001-01-01"),
            ("from", "0001-01-01T00:00:00+14:00"),
            ("to", "9999-12-31T23:59:59-14:00"),
            ("to", "9999-12-31T23:59:59"),
            ("from", "1899-12-31T23:59:59Z"),
        ],
    )
    @pytest.mark.parametrize("path", ["/v1/orders", "/v1/orders/export.csv"])
    def test_dates_outside_the_supported_range_are_422(
        self, client: TestClient, world: World, path: str, param: str, value: str
    ) -> None:
        response = client.get(path, params={param: value}, headers=world.h_admin)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert param in response.json()["detail"]

    @pytest.mark.parametrize(
        "query",
        [
            {"from": "1900-01-01", "to": "8999-12-31"},
            {"from": "1900-01-01T00:00:00Z", "to": "9000-01-01T00:00:00+00:00"},
        ],
    )
    def test_dates_at_the_ends_of_the_range_still_filter(
        self, client: TestClient, db: Session, world: World, query: dict[str, str]
    ) -> None:
        order = make_order(db, store=world.store)
        response = client.get("/v1/orders", params=query, headers=world.h_admin)
        assert response.status_code == 200, response.text
        assert order.id in [o["id"] for o in response.json()]


class TestRefreshTokenShape:
    @pytest.mark.parametrize(
        "token",
        [
            "².secret",  # a digit to str.isdigit, not to int()
            "١٢.secret",  # Arabic-Indic digits
            f"{2**63}.secret",  # one past bigint
            f"{10**30}.secret",
            "-1.secret",
            "1.",
            ".secret",
            "12",
        ],
    )
    @pytest.mark.parametrize("path", ["refresh", "logout"])
    def test_malformed_refresh_token_is_401(
        self, client: TestClient, path: str, token: str
    ) -> None:
        response = client.post(f"/v1/auth/{path}", json={"refresh_token": token})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthorized"

    def test_largest_id_is_parsed_and_simply_unknown(self, client: TestClient) -> None:
        response = client.post("/v1/auth/refresh", json={"refresh_token": f"{2**63 - 1}.secret"})
        assert response.status_code == 401


class TestTokenForm:
    @pytest.mark.parametrize(
        ("form", "field"),
        [
            ({"username": "", "password": PASSWORD}, "username"),
            ({"username": "   ", "password": PASSWORD}, "username"),
            ({"username": "x@example.com", "password": "p" * 257}, "password"),
            ({"username": "x@example.com", "password": ""}, "password"),
            ({"username": f"x{NUL}@example.com", "password": PASSWORD}, "username"),
            (
                {"username": "x@example.com", "password": PASSWORD, "grant_type": "code"},
                "grant_type",
            ),
        ],
    )
    def test_bad_form_is_422_naming_the_field(
        self, client: TestClient, form: dict[str, str], field: str
    ) -> None:
        response = client.post("/v1/auth/token", data=form)
        assert response.status_code == 422, response.text
        assert any(err["loc"][-1] == field for err in response.json()["errors"])

    def test_swagger_form_with_every_field_logs_in(self, client: TestClient, db: Session) -> None:
        user = make_user(db)
        form = {
            "grant_type": "password",
            "username": user.email or "",
            "password": PASSWORD,
            "scope": "",
            "client_id": "swagger",
            "client_secret": "",
        }
        response = client.post("/v1/auth/token", data=form)
        assert response.status_code == 200, response.text


PHONES_OK = ["+972501234567", "050-123 4567", "+972 (50) 123-4567", "  0501234567  "]
PHONES_BAD = ["call me", "050.123.4567", "²²²-1234", "+972 50 123 4567 ext 2", "---", "()"]


class TestPhones:
    @pytest.mark.parametrize("phone", PHONES_OK)
    def test_order_accepts_real_phones(self, client: TestClient, world: World, phone: str) -> None:
        response = client.post(
            "/v1/orders", json={**ORDER_BODY, "phone": phone}, headers=world.h_store
        )
        assert response.status_code == 201, response.text
        assert response.json()["phone"] == phone.strip()

    @pytest.mark.parametrize("phone", PHONES_BAD)
    def test_order_create_and_patch_refuse_what_is_not_a_phone(
        self, client: TestClient, db: Session, world: World, phone: str
    ) -> None:
        before = counts(db)
        created = client.post(
            "/v1/orders", json={**ORDER_BODY, "phone": phone}, headers=world.h_store
        )
        assert_names_field(created, "phone")
        assert counts(db) == before
        order = make_order(db, store=world.store)
        patched = client.patch(
            f"/v1/orders/{order.id}", json={"phone": phone}, headers=world.h_store
        )
        assert_names_field(patched, "phone")
        db.refresh(order)
        assert order.phone == "+972501234567"

    @pytest.mark.parametrize("phone", PHONES_BAD)
    @pytest.mark.parametrize(
        ("who", "path", "rest"),
        [
            ("anon", "/v1/auth/register", {"name": "N", "password": "long enough"}),
            ("admin", "/v1/admin/couriers", {"name": "N", "password": "long enough"}),
            ("admin", "/v1/admin/stores", {"name": "Bakery", "pickup_address": "Herzl 1"}),
            ("admin", "/v1/admin/couriers/{courier}/credentials", {}),
        ],
    )
    def test_user_and_store_phones_refuse_what_is_not_a_phone(
        self,
        client: TestClient,
        world: World,
        who: str,
        path: str,
        rest: dict[str, str],
        phone: str,
    ) -> None:
        headers = world.h_admin if who == "admin" else {}
        url = path.format(courier=world.courier.id)
        response = client.post(url, json={**rest, "phone": phone}, headers=headers)
        assert_names_field(response, "phone")

    @pytest.mark.parametrize("phone", PHONES_OK)
    def test_user_and_store_phones_accept_real_phones(
        self, client: TestClient, world: World, phone: str
    ) -> None:
        courier = client.post(
            "/v1/admin/couriers",
            json={"name": "N", "password": "long enough", "phone": phone},
            headers=world.h_admin,
        )
        assert courier.status_code == 201, courier.text
        store = client.post(
            "/v1/admin/stores",
            json={"name": f"Bakery {phone}", "pickup_address": "Herzl 1", "phone": phone},
            headers=world.h_admin,
        )
        assert store.status_code == 201, store.text
