"""Proofs of delivery: upload, validation by decoding, EXIF stripping, scoping, idempotency."""

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.api.edge import MULTIPART_ENVELOPE_BYTES, body_limit_for
from app.core.config import Settings
from app.db.models import Order, OrderEvent, OrderProof
from tests.builders import make_order
from tests.orders_helpers import World
from tests.proof_files import CAMERA, GPS_IFD, heic, jpeg, png, png_bomb, truncated_jpeg


@pytest.fixture(autouse=True)
def proof_dir(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    root = tmp_path / "proofs"
    monkeypatch.setattr(settings, "proof_storage_dir", root)
    return root


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def upload(
    client: TestClient,
    order_id: int,
    headers: dict[str, str],
    *,
    kind: str = "photo",
    stage: str = "dropoff",
    data: bytes | None = None,
    filename: str = "proof.jpg",
    key: str | None = None,
) -> Response:
    extra = {"Idempotency-Key": key} if key else {}
    response: Response = client.post(
        f"/v1/orders/{order_id}/proofs",
        headers={**headers, **extra},
        data={"kind": kind, "stage": stage},
        files={"file": (filename, jpeg() if data is None else data, "image/jpeg")},
    )
    return response


# --- upload ----------------------------------------------------------------------------------


def test_courier_uploads_a_photo_and_reads_it_back(
    client: TestClient, db: Session, world: World, proof_dir: Path
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = upload(client, order.id, world.h_courier)
    assert response.status_code == 201, response.text
    proof = response.json()
    assert proof["kind"] == "photo"
    assert proof["stage"] == "dropoff"
    assert proof["content_type"] == "image/jpeg"
    assert (proof["width"], proof["height"]) == (64, 48)
    assert proof["url"] == f"/v1/orders/{order.id}/proofs/{proof['id']}"
    listed = client.get(f"/v1/orders/{order.id}/proofs", headers=world.h_store).json()
    assert [p["id"] for p in listed] == [proof["id"]]
    got = client.get(proof["url"], headers=world.h_admin)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert "private" in got.headers["cache-control"]
    assert Image.open(io.BytesIO(got.content)).size == (64, 48)
    thumb = client.get(proof["thumbnail_url"], headers=world.h_courier)
    assert thumb.status_code == 200
    assert len(stored_files(proof_dir)) == 2  # the photo and its thumbnail


def test_upload_records_an_event_with_the_proof_id(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    proof_id = upload(client, order.id, world.h_courier).json()["id"]
    event = db.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id))
    assert event is not None
    assert event.type == "order.proof_added"
    assert event.data == {"proof_ids": [proof_id], "kind": "photo", "stage": "dropoff"}
    feed = client.get("/v1/events", params={"after": event.id - 1}, headers=world.h_store).json()
    assert feed["events"][0]["proof_ids"] == [proof_id]


def test_a_heic_photo_is_stored_as_jpeg(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = upload(client, order.id, world.h_courier, data=heic(), filename="IMG_0001.HEIC")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/jpeg"
    served = client.get(response.json()["url"], headers=world.h_courier).content
    assert Image.open(io.BytesIO(served)).format == "JPEG"


def test_a_png_photo_is_accepted(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    assert (
        upload(client, order.id, world.h_courier, data=png(), filename="p.png").status_code == 201
    )


def test_a_signature_must_be_a_png(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    ok = upload(client, order.id, world.h_courier, kind="signature", data=png(), filename="s.png")
    assert ok.status_code == 201, ok.text
    assert ok.json()["content_type"] == "image/png"
    refused = upload(client, order.id, world.h_courier, kind="signature", data=jpeg())
    assert refused.status_code == 415
    assert refused.json()["code"] == "unsupported_media_type"


def test_pickup_proof_while_accepted_but_dropoff_only_once_picked_up(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="accepted", courier=world.courier)
    assert upload(client, order.id, world.h_courier, stage="pickup").status_code == 201
    early = upload(client, order.id, world.h_courier, stage="dropoff")
    assert early.status_code == 409
    assert early.json()["code"] == "invalid_transition"


def test_a_final_order_takes_no_more_proofs(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="delivered", courier=world.courier)
    assert upload(client, order.id, world.h_courier).status_code == 409


# --- invalid files: a clear 4xx, and nothing stored -------------------------------------------

INVALID = [
    ("text_named_jpg", b"just some text, not a picture\n" * 20, 415, "unsupported_media_type"),
    ("truncated_jpeg", None, 422, "invalid_image"),
    ("png_bomb", None, 422, "image_too_large"),
    ("empty", b"", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("name", "data", "status", "code"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_images_are_refused_and_nothing_is_stored(
    client: TestClient,
    db: Session,
    world: World,
    proof_dir: Path,
    name: str,
    data: bytes | None,
    status: int,
    code: str,
) -> None:
    content = (
        {"truncated_jpeg": truncated_jpeg, "png_bomb": png_bomb}[name]() if data is None else data
    )
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = upload(client, order.id, world.h_courier, data=content)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert stored_files(proof_dir) == []
    assert db.scalar(select(OrderProof).where(OrderProof.order_id == order.id)) is None
    assert db.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id)) is None


def test_a_50_mb_file_is_413_before_it_is_read(
    client: TestClient, db: Session, world: World, proof_dir: Path
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = upload(client, order.id, world.h_courier, data=b"\xff" * (50 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert stored_files(proof_dir) == []


def test_a_file_over_the_setting_is_413_even_under_the_body_cap(
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    proof_dir: Path,
) -> None:
    # The app's own check, for a body the edge let through (a cap raised behind a proxy).
    monkeypatch.setattr(settings, "proof_max_bytes", 2048)
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = upload(client, order.id, world.h_courier, data=jpeg(size=(400, 400)))
    assert response.status_code == 413
    assert stored_files(proof_dir) == []


def test_exif_gps_and_camera_are_gone_from_the_stored_photo(
    client: TestClient, db: Session, world: World, proof_dir: Path
) -> None:
    original = jpeg(gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # the test file has GPS
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    proof = upload(client, order.id, world.h_courier, data=original).json()
    served = client.get(proof["url"], headers=world.h_admin).content
    for data in [served, *(p.read_bytes() for p in stored_files(proof_dir))]:
        image = Image.open(io.BytesIO(data))
        assert not image.getexif().get_ifd(GPS_IFD)
        assert len(image.getexif()) == 0
        assert CAMERA.encode() not in data
        assert b"Exif" not in data


# --- idempotency ------------------------------------------------------------------------------


def test_a_retried_upload_with_the_same_key_answers_with_the_first_proof(
    client: TestClient, db: Session, world: World, proof_dir: Path
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    first = upload(client, order.id, world.h_courier, key="photo-1")
    again = upload(client, order.id, world.h_courier, key="photo-1")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(db.scalars(select(OrderProof).where(OrderProof.order_id == order.id)).all()) == 1
    assert len(stored_files(proof_dir)) == 2
    other = upload(client, order.id, world.h_courier, key="photo-1", data=jpeg(size=(10, 10)))
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


# --- who sees what ----------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["h_other_store", "h_other_courier"])
def test_another_stores_user_or_another_courier_gets_404(
    client: TestClient, db: Session, world: World, caller: str
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    proof_id = upload(client, order.id, world.h_courier).json()["id"]
    headers = getattr(world, caller)
    for path in (f"/v1/orders/{order.id}/proofs", f"/v1/orders/{order.id}/proofs/{proof_id}"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert "Levi" not in response.text
    assert client.get(f"/v1/orders/{order.id}/proofs", headers=world.h_store).status_code == 200


def test_only_the_courier_holding_the_order_uploads(
    client: TestClient, db: Session, world: World, proof_dir: Path
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    assert upload(client, order.id, world.h_other_courier).status_code == 404
    assert upload(client, order.id, world.h_store).status_code == 403
    assert upload(client, order.id, {}).status_code == 401
    assert stored_files(proof_dir) == []


def test_a_proof_of_another_order_is_404(client: TestClient, db: Session, world: World) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    other = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    proof_id = upload(client, order.id, world.h_courier).json()["id"]
    response = client.get(f"/v1/orders/{other.id}/proofs/{proof_id}", headers=world.h_admin)
    assert response.status_code == 404


def test_a_courier_does_not_see_proofs_of_a_pool_order(
    client: TestClient, db: Session, world: World
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    upload(client, order.id, world.h_courier)
    db.execute(update(Order).where(Order.id == order.id).values(status="new", courier_id=None))
    db.commit()
    response = client.get(f"/v1/orders/{order.id}/proofs", headers=world.h_other_courier)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("data", "files", "field"),
    [
        ({"kind": "photo", "file": "not a file part"}, None, "file"),
        ({"kind": "video"}, {"file": ("p.jpg", b"x", "image/jpeg")}, "kind"),
        ({"kind": "photo", "stage": "lunch"}, {"file": ("p.jpg", b"x", "image/jpeg")}, "stage"),
        ({"kind": "photo"}, None, "file"),
    ],
)
def test_a_malformed_upload_form_is_422_naming_the_field(
    client: TestClient,
    db: Session,
    world: World,
    proof_dir: Path,
    data: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None,
    field: str,
) -> None:
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = client.post(
        f"/v1/orders/{order.id}/proofs", headers=world.h_courier, data=data, files=files
    )
    assert response.status_code == 422, response.text
    assert field in [err["loc"][-1] for err in response.json()["errors"]]
    assert stored_files(proof_dir) == []


def test_only_the_upload_path_gets_the_proof_body_cap() -> None:
    limit = body_limit_for(Settings(max_multipart_body_bytes=1000, proof_max_bytes=5000))
    multipart = "multipart/form-data; boundary=x"
    assert limit(multipart, "/v1/orders/12/proofs") == 5000 + MULTIPART_ENVELOPE_BYTES
    assert limit(multipart, "/v1/orders/12/proofs/3") == 1000
    assert limit(multipart, "/v1/orders/12/status") == 1000
    assert limit(multipart) == 1000


def test_an_order_holds_at_most_the_configured_number_of_proofs(
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    proof_dir: Path,
) -> None:
    monkeypatch.setattr(settings, "proof_max_per_order", 2)
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    assert upload(client, order.id, world.h_courier).status_code == 201
    assert upload(client, order.id, world.h_courier, stage="pickup").status_code == 201
    third = upload(client, order.id, world.h_courier)
    assert third.status_code == 409
    assert third.json()["code"] == "proof_limit_reached"
    assert len(stored_files(proof_dir)) == 4  # two proofs and their thumbnails
