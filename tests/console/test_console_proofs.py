"""Console proofs and proof policy: thumbnails behind the session and the order's scoping, the
store's policy form, clearing an order's optional field from the edit form."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import Order, Role, Store, User
from app.services.proof_policy import policy_from
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user
from tests.console.helpers import sign_in
from tests.proof_files import jpeg

REASONS = "failed_photo_required_for"
POLICY_FORM = {
    "delivered_photo": "required",
    "delivered_signature": "optional",
    "failed_photo": "optional",
    "failed_signature": "off",
}


@pytest.fixture(autouse=True)
def proof_dir(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    root = tmp_path / "proofs"
    monkeypatch.setattr(settings, "proof_storage_dir", root)
    return root


def delivered_with_photo(client: TestClient, db: Session, store: Store) -> tuple[Order, int]:
    """An order whose courier uploaded a drop-off photo through the API."""
    courier = make_user(db, role=Role.COURIER, name="Yossi Courier")
    order = make_order(db, store=store, status="picked_up", courier=courier)
    response = client.post(
        f"/v1/orders/{order.id}/proofs",
        headers=auth_headers(db, courier),
        data={"kind": "photo", "stage": "dropoff"},
        files={"file": ("proof.jpg", jpeg(size=(640, 480)), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    return order, int(response.json()["id"])


# --- the order page's proofs ------------------------------------------------------------------


def test_the_order_page_shows_each_proof_with_its_console_thumbnail(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order, proof_id = delivered_with_photo(client, db, store)
    sign_in(client, db, make_store_user(db, store=store))
    html = client.get(f"/console/orders/{order.id}").text
    thumb = f"/console/orders/{order.id}/proofs/{proof_id}?thumbnail=true"
    assert f'src="{thumb}"' in html
    assert f'href="/console/orders/{order.id}/proofs/{proof_id}"' in html
    assert "Yossi Courier" in html
    assert "dropoff" in html
    # Nothing signs the image in but the cookie: no token, no storage URL on the page.
    assert "token=" not in html
    assert "/v1/orders" not in html

    small = client.get(thumb)
    full = client.get(f"/console/orders/{order.id}/proofs/{proof_id}")
    assert (small.status_code, full.status_code) == (200, 200)
    assert small.headers["content-type"].startswith("image/")
    assert full.headers["content-type"] == "image/jpeg"
    assert len(small.content) < len(full.content)
    assert full.headers["cache-control"] == "private, max-age=300"
    assert (
        "img-src 'self'"
        in client.get(f"/console/orders/{order.id}").headers["content-security-policy"]
    )


def test_another_stores_proof_is_404(client: TestClient, db: Session) -> None:
    theirs, mine = make_store(db), make_store(db)
    order, proof_id = delivered_with_photo(client, db, theirs)
    sign_in(client, db, make_store_user(db, store=mine))
    for path in (
        f"/console/orders/{order.id}/proofs/{proof_id}",
        f"/console/orders/{order.id}/proofs/{proof_id}?thumbnail=true",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert not response.headers["content-type"].startswith("image/")


def test_a_proof_asked_for_under_another_order_is_404(client: TestClient, db: Session) -> None:
    store = make_store(db)
    _, proof_id = delivered_with_photo(client, db, store)
    own = make_order(db, store=store)
    sign_in(client, db, make_store_user(db, store=store))
    assert client.get(f"/console/orders/{own.id}/proofs/{proof_id}").status_code == 404


def test_a_proof_image_needs_the_console_session(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order, proof_id = delivered_with_photo(client, db, store)
    path = f"/console/orders/{order.id}/proofs/{proof_id}"
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    # An API token is not a console session.
    admin = make_user(db, role=Role.ADMIN)
    response = client.get(path, headers=auth_headers(db, admin), follow_redirects=False)
    assert response.status_code == 303


# --- the store's proof policy form ------------------------------------------------------------


def test_admin_sets_the_proof_policy_like_the_api(client: TestClient, db: Session) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    page = client.get(f"/console/stores/{store.id}").text
    assert 'id="proof-policy-form"' in page
    response = client.post(
        f"/console/stores/{store.id}/proof-policy",
        data={**POLICY_FORM, "csrf_token": csrf, "failed_photo_required_for": ["damaged"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    db.refresh(store)
    policy = policy_from(store.proof_policy)
    assert (policy.delivered.photo, policy.failed.signature) == ("required", "off")
    assert policy.failed.photo_required_for == ["damaged"]
    # The API reads back what the form saved.
    api = client.get(
        f"/v1/admin/stores/{store.id}/proof-policy",
        headers=auth_headers(db, make_user(db, role=Role.ADMIN)),
    )
    assert api.json()["delivered"]["photo"] == "required"
    shown = client.get(f"/console/stores/{store.id}").text
    assert '<option value="required" selected>' in shown
    assert 'value="damaged" checked' in shown


def test_the_policy_form_without_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    store = make_store(db)
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(f"/console/stores/{store.id}/proof-policy", data=POLICY_FORM)
    assert response.status_code == 403
    assert "csrf_refused" in response.text
    db.refresh(store)
    assert store.proof_policy is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({**POLICY_FORM, "delivered_photo": "sometimes"}, "delivered_photo"),
        ({k: v for k, v in POLICY_FORM.items() if k != "failed_signature"}, "failed_signature"),
        ({**POLICY_FORM, REASONS: "no_such_reason"}, REASONS),
        ({**POLICY_FORM, REASONS: "Bad Code!"}, REASONS),
    ],
)
def test_a_bad_policy_is_named_next_to_its_field_and_changes_nothing(
    client: TestClient, db: Session, form: dict[str, str], field: str
) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(
        f"/console/stores/{store.id}/proof-policy", data={**form, "csrf_token": csrf}
    )
    assert response.status_code == 422
    assert f'id="e-{field}"' in response.text
    assert 'id="e-policy_form"' not in response.text
    db.refresh(store)
    assert store.proof_policy is None


def test_only_an_admin_sets_a_proof_policy(client: TestClient, db: Session) -> None:
    store = make_store(db)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(
        f"/console/stores/{store.id}/proof-policy", data={**POLICY_FORM, "csrf_token": csrf}
    )
    assert response.status_code == 403
    db.refresh(store)
    assert store.proof_policy is None


def test_the_policy_of_a_missing_store_is_404(client: TestClient, db: Session) -> None:
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    response = client.post(
        "/console/stores/999999/proof-policy", data={**POLICY_FORM, "csrf_token": csrf}
    )
    assert response.status_code == 404


# --- clearing an optional field from the order edit form ----------------------------------------


def edit_form(order: Order, csrf: str, **changes: str) -> dict[str, str]:
    """The edit form as the page renders it (every field with its value), with changes."""
    fields = {
        "recipient_first_name": order.recipient_first_name,
        "recipient_last_name": order.recipient_last_name,
        "phone": order.phone,
        "street": order.street,
        "building_no": order.building_no,
        "floor": order.floor or "",
        "apartment": order.apartment or "",
        "delivery_address": order.delivery_address,
        "pickup_address": order.pickup_address or "",
        "notes": order.notes or "",
        "boxes_count": str(order.boxes_count),
    }
    return {**fields, **changes, "csrf_token": csrf, "version": str(order.version)}


def with_extras(db: Session, order: Order) -> Order:
    order.floor, order.apartment, order.notes = "3", "12", "ring twice"
    db.commit()
    return order


def test_a_blank_optional_field_clears_it(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = with_extras(db, make_order(db, store=store))
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(
        f"/console/orders/{order.id}/edit",
        data=edit_form(order, csrf, floor="", notes=""),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    db.refresh(order)
    assert (order.floor, order.apartment, order.notes) == (None, "12", None)


def test_a_blank_required_field_is_named_and_nothing_changes(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order = with_extras(db, make_order(db, store=store))
    csrf = sign_in(client, db, make_store_user(db, store=store))
    response = client.post(
        f"/console/orders/{order.id}/edit",
        data=edit_form(order, csrf, recipient_first_name="", floor=""),
    )
    assert response.status_code == 422
    assert 'id="e-recipient_first_name"' in response.text
    db.refresh(order)
    assert order.recipient_first_name
    assert order.floor == "3"


def test_the_apis_patch_still_reads_blank_as_unchanged(client: TestClient, db: Session) -> None:
    store = make_store(db)
    order = with_extras(db, make_order(db, store=store))
    user: User = make_store_user(db, store=store)
    response = client.patch(
        f"/v1/orders/{order.id}",
        headers=auth_headers(db, user),
        json={"pickup_address": "", "delivery_address": ""},
    )
    assert response.status_code == 200, response.text
    db.refresh(order)
    assert (order.floor, order.notes) == ("3", "ring twice")
    assert order.pickup_address
    assert order.delivery_address
