"""/v1/admin/*: couriers, stores, store staff, approvals; and who may call them."""

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.api.routes import admin as admin_routes
from app.db.models import Role, StoreRole
from tests.builders import (
    PASSWORD,
    auth_headers,
    make_order,
    make_store,
    make_store_user,
    make_user,
)


def admin_endpoints() -> list[tuple[str, str]]:
    """Every route of the admin router, ids filled in: a route added later is checked too."""
    endpoints = []
    for route in admin_routes.router.routes:
        assert isinstance(route, APIRoute)
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        endpoints += [(method, path) for method in sorted(route.methods or ())]
    return endpoints


ADMIN_ENDPOINTS = admin_endpoints()


def test_the_role_matrix_covers_every_admin_route() -> None:
    # The enumeration found the router's routes (not an empty list that checks nothing).
    assert len(ADMIN_ENDPOINTS) >= 16
    assert ("POST", "/v1/admin/users/1/approve") in ADMIN_ENDPOINTS


@pytest.fixture
def admin_headers(db: Session) -> dict[str, str]:
    return auth_headers(db, make_user(db, role=Role.ADMIN))


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
def test_admin_endpoints_refuse_everyone_but_admins(
    client: TestClient, db: Session, method: str, path: str
) -> None:
    anonymous = client.request(method, path, json={})
    assert anonymous.status_code == 401
    courier = client.request(method, path, json={}, headers=auth_headers(db, make_user(db)))
    assert courier.status_code == 403
    store_user = make_store_user(db, store=make_store(db))
    as_store = client.request(method, path, json={}, headers=auth_headers(db, store_user))
    assert as_store.status_code == 403
    assert as_store.json()["code"] == "forbidden"


class TestCouriers:
    def test_create_get_list_and_patch(
        self, client: TestClient, admin_headers: dict[str, str]
    ) -> None:
        created = client.post(
            "/v1/admin/couriers",
            json={
                "name": "Moshe",
                "phone": "+972 52 111 2222",
                "password": PASSWORD,
                "capacity_boxes": 12,
            },
            headers=admin_headers,
        )
        assert created.status_code == 201, created.text
        courier = created.json()
        assert set(courier) == {
            "id",
            "name",
            "email",
            "phone",
            "status",
            "capacity_boxes",
            "on_duty",
            "created_at",
            "last_login_at",
        }
        assert courier["on_duty"] is True
        resting = client.post(
            "/v1/admin/couriers",
            json={"name": "Rest", "phone": "+972521113333", "password": PASSWORD, "on_duty": False},
            headers=admin_headers,
        )
        assert resting.status_code == 201, resting.text
        assert resting.json()["on_duty"] is False
        assert courier["phone"] == "+972521112222"
        assert courier["capacity_boxes"] == 12
        got = client.get(f"/v1/admin/couriers/{courier['id']}", headers=admin_headers)
        assert got.json() == courier
        assert courier["id"] in [
            c["id"] for c in client.get("/v1/admin/couriers", headers=admin_headers).json()
        ]
        patched = client.patch(
            f"/v1/admin/couriers/{courier['id']}",
            json={"capacity_boxes": 20},
            headers=admin_headers,
        )
        assert patched.json()["capacity_boxes"] == 20
        assert patched.json()["name"] == "Moshe"

    def test_duplicate_email_or_phone_is_409_not_500(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        make_user(db, email="taken@example.com", phone="+972500000099")
        for body in (
            {"email": "TAKEN@example.com"},
            {"phone": "050-000-0099".replace("050", "+97250")},
        ):
            response = client.post(
                "/v1/admin/couriers",
                json={"name": "X", "password": PASSWORD, **body},
                headers=admin_headers,
            )
            assert response.status_code == 409, body
            assert response.json()["code"] == "duplicate"

    def test_unknown_courier_is_404(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        store_user = make_store_user(db, store=make_store(db))
        assert client.get("/v1/admin/couriers/999999", headers=admin_headers).status_code == 404
        # A user of another role is not a courier.
        assert (
            client.get(f"/v1/admin/couriers/{store_user.id}", headers=admin_headers).status_code
            == 404
        )

    def test_status_change_revokes_sessions(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        courier = make_user(db)
        login = client.post(
            "/v1/auth/login", json={"identifier": courier.email, "password": PASSWORD}
        ).json()
        client.post(
            f"/v1/admin/couriers/{courier.id}/status",
            json={"status": "offboarded"},
            headers=admin_headers,
        )
        client.post(
            f"/v1/admin/couriers/{courier.id}/status",
            json={"status": "active"},
            headers=admin_headers,
        )
        # Reactivation does not bring the old session back.
        assert (
            client.post(
                "/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
            ).status_code
            == 401
        )

    def test_invalid_status_is_422(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        courier = make_user(db)
        response = client.post(
            f"/v1/admin/couriers/{courier.id}/status",
            json={"status": "on-vacation"},
            headers=admin_headers,
        )
        assert response.status_code == 422

    def test_credentials_blank_fields_stay_and_password_change_revokes(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        courier = make_user(db, email="keep@example.com", phone="+972501112233")
        login = client.post(
            "/v1/auth/login", json={"identifier": "keep@example.com", "password": PASSWORD}
        ).json()
        response = client.post(
            f"/v1/admin/couriers/{courier.id}/credentials",
            json={"email": "", "phone": "  ", "password": "new password 123"},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["email"] == "keep@example.com"
        assert response.json()["phone"] == "+972501112233"
        assert (
            client.get(
                "/v1/auth/me", headers={"Authorization": f"Bearer {login['access_token']}"}
            ).status_code
            == 401
        )
        assert (
            client.post(
                "/v1/auth/login",
                json={"identifier": "keep@example.com", "password": "new password 123"},
            ).status_code
            == 200
        )

    def test_credentials_taken_email_is_409(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        make_user(db, email="other@example.com")
        courier = make_user(db)
        response = client.post(
            f"/v1/admin/couriers/{courier.id}/credentials",
            json={"email": "other@example.com"},
            headers=admin_headers,
        )
        assert response.status_code == 409

    def test_patch_applies_on_duty_and_the_whole_object_sent_back(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        courier = make_user(db)
        read = client.get(f"/v1/admin/couriers/{courier.id}", headers=admin_headers).json()
        # The web admin sends the whole object back with one key changed.
        patched = client.patch(
            f"/v1/admin/couriers/{courier.id}",
            json={**read, "on_duty": False},
            headers=admin_headers,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["on_duty"] is False
        db.refresh(courier)
        assert courier.on_duty is False
        bad = client.patch(
            f"/v1/admin/couriers/{courier.id}", json={"on_duty": "maybe"}, headers=admin_headers
        )
        assert bad.status_code == 422
        assert "on_duty" in str(bad.json()["errors"])

    def test_duty_endpoint_sets_duty_and_counts_held_orders(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        courier = make_user(db)
        make_order(db, store=make_store(db), status="picked_up", courier=courier)
        off = client.post(
            f"/v1/admin/couriers/{courier.id}/duty", json={"on_duty": False}, headers=admin_headers
        )
        assert off.status_code == 200, off.text
        assert off.json()["on_duty"] is False
        assert off.json()["active_orders"] == 1
        assert "1 active order" in off.json()["message"]
        listed = client.get("/v1/admin/couriers", headers=admin_headers).json()
        assert [c["on_duty"] for c in listed if c["id"] == courier.id] == [False]
        on = client.post(
            f"/v1/admin/couriers/{courier.id}/duty", json={"on_duty": True}, headers=admin_headers
        )
        assert on.json()["on_duty"] is True
        assert (
            client.post(
                "/v1/admin/couriers/999999/duty", json={"on_duty": True}, headers=admin_headers
            ).status_code
            == 404
        )
        assert (
            client.post(
                f"/v1/admin/couriers/{courier.id}/duty", json={}, headers=admin_headers
            ).status_code
            == 422
        )


class TestStores:
    def test_create_patch_status_and_list(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        created = client.post(
            "/v1/admin/stores",
            json={"name": "Falafel Bros", "pickup_address": "King George 10", "box_limit": 40},
            headers=admin_headers,
        )
        assert created.status_code == 201, created.text
        store = created.json()
        assert set(store) == {
            "id",
            "name",
            "status",
            "pickup_address",
            "phone",
            "box_limit",
            "hours_text",
            "created_at",
        }
        patched = client.patch(
            f"/v1/admin/stores/{store['id']}", json={"hours_text": "9-17"}, headers=admin_headers
        )
        assert patched.json()["hours_text"] == "9-17"
        assert patched.json()["pickup_address"] == "King George 10"
        suspended = client.post(
            f"/v1/admin/stores/{store['id']}/status",
            json={"status": "suspended"},
            headers=admin_headers,
        )
        assert suspended.json()["status"] == "suspended"
        assert store["id"] in [
            s["id"] for s in client.get("/v1/admin/stores", headers=admin_headers).json()
        ]

    def test_duplicate_store_name_is_409(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        make_store(db, name="Same Name")
        response = client.post(
            "/v1/admin/stores",
            json={"name": "Same Name", "pickup_address": "x"},
            headers=admin_headers,
        )
        assert response.status_code == 409

    def test_credentials_create_then_update_the_owner(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        store = make_store(db)
        first = client.post(
            f"/v1/admin/stores/{store.id}/credentials",
            json={"email": "owner@shop.example", "password": "owner password"},
            headers=admin_headers,
        )
        assert first.status_code == 200, first.text
        assert first.json()["store_ids"] == [store.id]
        second = client.post(
            f"/v1/admin/stores/{store.id}/credentials",
            json={"phone": "+972533334444"},
            headers=admin_headers,
        )
        assert second.json()["id"] == first.json()["id"]
        assert second.json()["email"] == "owner@shop.example"
        me = client.post(
            "/v1/auth/login", json={"identifier": "+972533334444", "password": "owner password"}
        )
        assert me.status_code == 200
        assert me.json()["user"]["store_ids"] == [store.id]

    def test_credentials_without_password_for_a_new_owner_is_422(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        store = make_store(db)
        response = client.post(
            f"/v1/admin/stores/{store.id}/credentials",
            json={"email": "a@b.example"},
            headers=admin_headers,
        )
        assert response.status_code == 422

    def test_suspending_a_store_locks_out_its_staff(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        store = make_store(db)
        staff = make_store_user(db, store=store)
        headers = auth_headers(db, staff)
        client.post(
            f"/v1/admin/stores/{store.id}/status",
            json={"status": "suspended"},
            headers=admin_headers,
        )
        assert client.get("/v1/auth/me", headers=headers).status_code == 401

    def test_store_users_create_list_add_and_remove(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        store, other = make_store(db), make_store(db)
        created = client.post(
            f"/v1/admin/stores/{store.id}/users",
            json={"name": "Cashier", "email": "cashier@shop.example", "password": PASSWORD},
            headers=admin_headers,
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert created.json()["role_in_store"] == StoreRole.STAFF
        added = client.post(
            f"/v1/admin/stores/{other.id}/users", json={"user_id": user_id}, headers=admin_headers
        )
        assert added.status_code == 201
        again = client.post(
            f"/v1/admin/stores/{other.id}/users", json={"user_id": user_id}, headers=admin_headers
        )
        assert again.status_code == 409
        listed = client.get(f"/v1/admin/stores/{store.id}/users", headers=admin_headers).json()
        assert [u["id"] for u in listed] == [user_id]
        removed = client.delete(
            f"/v1/admin/stores/{store.id}/users/{user_id}", headers=admin_headers
        )
        assert removed.json() == {"ok": True}
        assert client.get(f"/v1/admin/stores/{store.id}/users", headers=admin_headers).json() == []
        assert (
            client.delete(
                f"/v1/admin/stores/{store.id}/users/{user_id}", headers=admin_headers
            ).status_code
            == 404
        )

    def test_public_store_list_is_scoped(
        self, client: TestClient, db: Session, admin_headers: dict[str, str]
    ) -> None:
        mine, theirs = make_store(db), make_store(db)
        user = make_store_user(db, store=mine)
        seen = [s["id"] for s in client.get("/v1/stores", headers=auth_headers(db, user)).json()]
        assert seen == [mine.id]
        all_ids = [s["id"] for s in client.get("/v1/stores", headers=admin_headers).json()]
        assert {mine.id, theirs.id} <= set(all_ids)
        assert client.get("/v1/stores", headers=auth_headers(db, make_user(db))).json() == []
