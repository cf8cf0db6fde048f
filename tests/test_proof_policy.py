"""The per-store proof policy and failure reasons: policy x outcome x uploads -> answer."""

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import OrderEvent
from app.schemas.proofs import ProofPolicy
from app.services.proof_policy import collects, missing_proofs
from tests.builders import make_order
from tests.orders_helpers import World
from tests.proof_files import jpeg, png


@pytest.fixture(autouse=True)
def proof_dir(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(settings, "proof_storage_dir", tmp_path / "proofs")


REQ, OPT, OFF = "required", "optional", "off"


def policy(
    photo: str = OPT, signature: str = OPT, *, failed: dict[str, object] | None = None
) -> dict[str, object]:
    return {"delivered": {"photo": photo, "signature": signature}, "failed": failed or {}}


# (delivered photo, delivered signature, failed policy, outcome, reason, uploaded) -> missing
# An empty "missing" means the transition succeeds (200); otherwise 409 proof_required naming it.
Row = tuple[str, str, dict[str, object], str, str | None, tuple[str, ...], list[str]]
TABLE: list[Row] = [
    (OPT, OPT, {}, "delivered", None, (), []),
    (REQ, OPT, {}, "delivered", None, (), ["photo"]),
    (REQ, OPT, {}, "delivered", None, ("photo",), []),
    (REQ, OPT, {}, "delivered", None, ("signature",), ["photo"]),
    (OPT, REQ, {}, "delivered", None, ("photo",), ["signature"]),
    (REQ, REQ, {}, "delivered", None, (), ["photo", "signature"]),
    (REQ, REQ, {}, "delivered", None, ("photo", "signature"), []),
    (OFF, OFF, {}, "delivered", None, (), []),
    # The delivered policy does not bind a failure, and the reverse.
    (REQ, REQ, {}, "failed", "refused", (), []),
    (OPT, OPT, {"photo": REQ}, "delivered", None, (), []),
    (OPT, OPT, {"photo": REQ}, "failed", "refused", (), ["photo"]),
    (OPT, OPT, {"photo": REQ}, "failed", "refused", ("photo",), []),
    (OPT, OPT, {"signature": REQ}, "failed", "refused", ("photo",), ["signature"]),
    # Per reason: damaged needs a photo, refused does not.
    (OPT, OPT, {"photo_required_for": ["damaged"]}, "failed", "damaged", (), ["photo"]),
    (OPT, OPT, {"photo_required_for": ["damaged"]}, "failed", "damaged", ("photo",), []),
    (OPT, OPT, {"photo_required_for": ["damaged"]}, "failed", "refused", (), []),
    (
        OPT,
        OPT,
        {"photo": OFF, "photo_required_for": ["damaged"]},
        "failed",
        "damaged",
        (),
        ["photo"],
    ),
]


def _id(row: Row) -> str:
    photo, signature, failed, outcome, reason, uploaded, _missing = row
    return (
        f"{outcome}-{reason or ''}-d{photo}/{signature}-f{failed}-up{'+'.join(uploaded) or 'none'}"
    )


@pytest.mark.parametrize("row", TABLE, ids=[_id(r) for r in TABLE])
def test_missing_proofs_table(
    row: Row,
) -> None:
    photo, signature, failed, outcome, reason, uploaded, missing = row
    rules = ProofPolicy.model_validate(policy(photo, signature, failed=failed))
    assert missing_proofs(rules, outcome=outcome, reason_code=reason, uploaded=uploaded) == missing


@pytest.mark.parametrize("row", TABLE, ids=[_id(r) for r in TABLE])
def test_outcome_transition_against_the_policy(
    client: TestClient,
    db: Session,
    world: World,
    row: Row,
) -> None:
    photo, signature, failed, outcome, reason, uploaded, missing = row
    set_policy = client.put(
        f"/v1/admin/stores/{world.store.id}/proof-policy",
        json=policy(photo, signature, failed=failed),
        headers=world.h_admin,
    )
    assert set_policy.status_code == 200, set_policy.text
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    proof_ids = []
    for kind in uploaded:
        response = client.post(
            f"/v1/orders/{order.id}/proofs",
            headers=world.h_courier,
            data={"kind": kind, "stage": "dropoff"},
            files={"file": ("f", png() if kind == "signature" else jpeg(), "image/png")},
        )
        assert response.status_code == 201, response.text
        proof_ids.append(response.json()["id"])
    body: dict[str, object] = {"status": outcome}
    if reason:
        body["reason_code"] = reason
    response = client.post(f"/v1/orders/{order.id}/status", json=body, headers=world.h_courier)
    if missing:
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "proof_required"
        for kind in missing:
            assert kind in response.json()["detail"]
        after = client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()
        assert after["status"] == "picked_up"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == outcome
        event = db.scalars(
            select(OrderEvent).where(
                OrderEvent.order_id == order.id, OrderEvent.to_status == outcome
            )
        ).one()
        assert (event.data or {}).get("proof_ids", []) == proof_ids


def test_a_kind_off_for_both_outcomes_is_not_accepted(
    client: TestClient, db: Session, world: World
) -> None:
    client.put(
        f"/v1/admin/stores/{world.store.id}/proof-policy",
        json=policy(OFF, OFF, failed={"photo": OFF, "signature": OFF}),
        headers=world.h_admin,
    )
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = client.post(
        f"/v1/orders/{order.id}/proofs",
        headers=world.h_courier,
        data={"kind": "photo"},
        files={"file": ("f.jpg", jpeg(), "image/jpeg")},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "proof_not_accepted"


def test_collects_a_photo_a_reason_requires_even_when_photo_is_off() -> None:
    rules = ProofPolicy.model_validate(
        policy(OFF, OFF, failed={"photo": OFF, "signature": OFF, "photo_required_for": ["damaged"]})
    )
    assert collects(rules, "photo")
    assert not collects(rules, "signature")


# --- the policy endpoints -----------------------------------------------------------------------


def test_store_policy_defaults_to_all_optional_and_round_trips(
    client: TestClient, world: World
) -> None:
    path = f"/v1/admin/stores/{world.store.id}/proof-policy"
    assert client.get(path, headers=world.h_admin).json() == {
        "delivered": {"photo": "optional", "signature": "optional"},
        "failed": {"photo": "optional", "signature": "optional", "photo_required_for": []},
    }
    new = policy(REQ, OPT, failed={"photo_required_for": ["damaged", "unsafe_location"]})
    assert client.put(path, json=new, headers=world.h_admin).status_code == 200
    read = client.get(path, headers=world.h_admin).json()
    assert read["delivered"]["photo"] == "required"
    assert read["failed"]["photo_required_for"] == ["damaged", "unsafe_location"]


def test_couriers_and_stores_read_the_policy_of_orders_they_see(
    client: TestClient, db: Session, world: World
) -> None:
    client.put(
        f"/v1/admin/stores/{world.store.id}/proof-policy",
        json=policy(REQ, OPT),
        headers=world.h_admin,
    )
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    path = f"/v1/orders/{order.id}/proof-policy"
    assert client.get(path, headers=world.h_courier).json()["delivered"]["photo"] == "required"
    assert client.get(path, headers=world.h_store).status_code == 200
    assert client.get(path, headers=world.h_other_store).status_code == 404
    assert client.get(path, headers=world.h_other_courier).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"delivered": {"photo": "sometimes"}},
        {"failed": {"photo_required_for": ["teleported"]}},
        {"delivered": {"video": "required"}},
    ],
)
def test_an_invalid_policy_is_422_and_changes_nothing(
    client: TestClient, world: World, body: dict[str, object]
) -> None:
    path = f"/v1/admin/stores/{world.store.id}/proof-policy"
    before = client.get(path, headers=world.h_admin).json()
    response = client.put(path, json=body, headers=world.h_admin)
    assert response.status_code == 422
    assert client.get(path, headers=world.h_admin).json() == before


def test_only_admins_set_the_policy(client: TestClient, world: World) -> None:
    path = f"/v1/admin/stores/{world.store.id}/proof-policy"
    for headers in (world.h_store, world.h_courier):
        assert client.put(path, json=policy(REQ, REQ), headers=headers).status_code == 403
    assert (
        client.put(
            "/v1/admin/stores/999999/proof-policy", json={}, headers=world.h_admin
        ).status_code
        == 404
    )


# --- failure reasons --------------------------------------------------------------------------


def test_failure_reasons_lists_the_configured_codes(client: TestClient, world: World) -> None:
    reasons = client.get("/v1/failure-reasons", headers=world.h_courier).json()
    assert [r["code"] for r in reasons] == [
        "recipient_absent",
        "wrong_address",
        "refused",
        "damaged",
        "unsafe_location",
        "other",
    ]
    assert [r["code"] for r in reasons if r["note_required"]] == ["other"]
    assert client.get("/v1/failure-reasons").status_code == 401


def test_failure_reasons_follow_the_setting(
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "failure_reasons", ["closed", "other"])
    reasons = client.get("/v1/failure-reasons", headers=world.h_courier).json()
    assert [(r["code"], r["label"]) for r in reasons] == [("closed", "Closed"), ("other", "Other")]
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    refused = client.post(
        f"/v1/orders/{order.id}/status",
        json={"status": "failed", "reason_code": "refused"},
        headers=world.h_courier,
    )
    assert refused.status_code == 422


def _fail(client: TestClient, world: World, order_id: int, **body: object) -> dict[str, object]:
    response = client.post(
        f"/v1/orders/{order_id}/status", json={"status": "failed", **body}, headers=world.h_courier
    )
    result: dict[str, object] = {**response.json(), "http": response.status_code}
    return result


def test_failing_with_a_reason_code_records_code_note_and_event(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    failed = _fail(client, world, order.id, reason_code="recipient_absent", note="Rang twice")
    assert failed["http"] == 200
    assert failed["failure_reason_code"] == "recipient_absent"
    assert failed["failure_reason"] == "Rang twice"
    event = db.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id)).one()
    assert event.data == {"note": "Rang twice", "reason_code": "recipient_absent"}
    feed = client.get("/v1/events", params={"after": event.id - 1}, headers=world.h_store).json()
    assert feed["events"][0]["reason_code"] == "recipient_absent"


def test_a_reason_code_without_a_note_gets_its_label(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    failed = _fail(client, world, order.id, reason_code="wrong_address")
    assert (failed["failure_reason_code"], failed["failure_reason"]) == (
        "wrong_address",
        "Wrong address",
    )


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"reason_code": "other"}, "other needs a note"),
        ({"reason_code": "teleported"}, "must be one of"),
        ({}, "reason_code is required"),
    ],
)
def test_bad_failures_are_422_and_change_nothing(
    client: TestClient, db: Session, world: World, body: dict[str, object], why: str
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    failed = _fail(client, world, order.id, **body)
    assert failed["http"] == 422
    assert why in str(failed["detail"])
    assert client.get(f"/v1/orders/{order.id}", headers=world.h_admin).json()["version"] == 1


def test_other_with_a_note_is_accepted(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    failed = _fail(client, world, order.id, reason_code="other", note="Gate code wrong")
    assert (failed["failure_reason_code"], failed["failure_reason"]) == ("other", "Gate code wrong")


@pytest.mark.parametrize(
    ("reason", "code"), [("refused", "refused"), ("Nobody answered the door", "other")]
)
def test_the_free_text_reason_of_older_clients_maps_to_a_code(
    client: TestClient, db: Session, world: World, reason: str, code: str
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    failed = _fail(client, world, order.id, reason=reason)
    assert failed["failure_reason_code"] == code


def test_reason_code_only_with_failed_and_recipient_only_with_delivered(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    url = f"/v1/orders/{order.id}/status"
    for body in (
        {"status": "delivered", "reason_code": "refused"},
        {"status": "failed", "reason_code": "refused", "recipient_name": "Dana"},
    ):
        assert client.post(url, json=body, headers=world.h_courier).status_code == 422


def test_delivered_records_the_recipient_name_everywhere(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    delivered = client.post(
        f"/v1/orders/{order.id}/status",
        json={"status": "delivered", "recipient_name": "  Dana Cohen "},
        headers=world.h_courier,
    ).json()
    assert delivered["recipient_name"] == "Dana Cohen"
    event = db.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id)).one()
    assert event.data == {"recipient_name": "Dana Cohen"}
    csv_text = client.get("/v1/orders/export.csv", headers=world.h_admin).text
    header, row = csv_text.lstrip("\ufeff").splitlines()[:2]
    columns = header.split(",")
    assert "failure_reason_code" in columns
    assert (
        dict(zip(columns, next(csv.reader([row])), strict=True))["recipient_name"] == "Dana Cohen"
    )


def test_the_csv_has_the_reason_code(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    _fail(client, world, order.id, reason_code="damaged")
    text = client.get("/v1/orders/export.csv", headers=world.h_admin).text.lstrip("\ufeff")
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["failure_reason_code"] == "damaged"
    assert row["recipient_name"] == ""
