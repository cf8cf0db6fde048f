"""Proof storage: both backends behind one interface, S3 against a real S3-compatible server."""

import io
import os
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr
from sqlalchemy.orm import Session

from app.core.config import ProofStorageBackend, Settings
from app.db.base import utcnow
from app.services.maintenance import run_housekeeping
from app.services.proof_storage import LocalStorage, ProofStorage, S3Storage
from app.services.proofs import delete_orphans
from tests.builders import make_order
from tests.orders_helpers import World
from tests.proof_files import CAMERA, jpeg
from tests.s3_server import KEY_ID, SECRET

FUTURE = timedelta(seconds=-3600)  # a grace "in the future": every object counts as old


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ProofStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "proofs")
    s3: S3Storage = request.getfixturevalue("s3_storage")
    return s3


def test_put_get_delete(storage: ProofStorage) -> None:
    storage.put("orders/1/a.jpg", b"bytes", "image/jpeg")
    assert storage.get("orders/1/a.jpg") == b"bytes"
    assert list(storage.keys_older_than(utcnow() - FUTURE)) == ["orders/1/a.jpg"]
    assert list(storage.keys_older_than(utcnow() - timedelta(hours=1))) == []
    storage.delete("orders/1/a.jpg")
    storage.delete("orders/1/a.jpg")  # deleting what is gone is not an error
    assert list(storage.keys_older_than(utcnow() - FUTURE)) == []


@pytest.mark.parametrize("key", ["../escape.jpg", "/etc/passwd", "orders/../../x", ""])
def test_keys_that_could_climb_out_are_refused(storage: ProofStorage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.put(key, b"x", "image/jpeg")


def test_local_storage_has_no_presigned_urls(tmp_path: Path) -> None:
    assert LocalStorage(tmp_path).presigned_url("orders/1/a.jpg", 60) is None


@pytest.mark.slow
def test_an_s3_presigned_url_serves_the_object_and_only_with_its_signature(
    s3_storage: S3Storage,
) -> None:
    s3_storage.put("orders/7/p.jpg", b"the photo", "image/jpeg")
    url = s3_storage.presigned_url("orders/7/p.jpg", 60)
    assert url is not None
    fetched = httpx.get(url)
    assert fetched.status_code == 200
    assert fetched.content == b"the photo"
    assert fetched.headers["content-type"] == "image/jpeg"
    unsigned = httpx.get(url.split("?")[0])
    assert unsigned.status_code == 403


def test_orphans_are_deleted_and_named_objects_kept(
    storage: ProofStorage,
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(storage, settings, monkeypatch)
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = client.post(
        f"/v1/orders/{order.id}/proofs",
        headers=world.h_courier,
        data={"kind": "photo"},
        files={"file": ("p.jpg", jpeg(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    storage.put("orders/1/orphan.jpg", b"never committed", "image/jpeg")
    before = set(storage.keys_older_than(utcnow() - FUTURE))
    assert len(before) == 3
    assert delete_orphans(db, storage=storage, grace=FUTURE) == 1
    after = set(storage.keys_older_than(utcnow() - FUTURE))
    assert after == before - {"orders/1/orphan.jpg"}
    # A young object (an upload between its write and its commit) is left alone.
    storage.put("orders/1/in-flight.jpg", b"committing", "image/jpeg")
    assert delete_orphans(db, storage=storage, grace=timedelta(hours=1)) == 0


def use(storage: ProofStorage, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Points the app's settings at this storage."""
    if isinstance(storage, S3Storage):
        monkeypatch.setattr(settings, "proof_storage", ProofStorageBackend.S3)
        monkeypatch.setattr(settings, "proof_s3_bucket", storage.bucket)
        monkeypatch.setattr(settings, "proof_s3_endpoint_url", storage.client.meta.endpoint_url)
        monkeypatch.setattr(settings, "proof_s3_access_key_id", KEY_ID)
        monkeypatch.setattr(settings, "proof_s3_secret_access_key", SecretStr(SECRET))
    else:
        assert isinstance(storage, LocalStorage)
        monkeypatch.setattr(settings, "proof_storage_dir", storage.root)


def test_housekeeping_sweeps_old_orphans_from_the_proof_directory(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "proofs"
    monkeypatch.setattr(settings, "proof_storage_dir", root)
    storage = LocalStorage(root)
    storage.put("orders/1/old.jpg", b"x", "image/jpeg")
    storage.put("orders/1/new.jpg", b"x", "image/jpeg")
    two_hours_ago = time.time() - 7200
    os.utime(root / "orders/1/old.jpg", (two_hours_ago, two_hours_ago))
    run_housekeeping(db)
    assert not (root / "orders/1/old.jpg").exists()
    assert (root / "orders/1/new.jpg").exists()


@pytest.mark.slow
def test_upload_to_s3_lists_a_presigned_url_that_serves_the_stripped_photo(
    s3_storage: S3Storage,
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(s3_storage, settings, monkeypatch)
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    created = client.post(
        f"/v1/orders/{order.id}/proofs",
        headers=world.h_courier,
        data={"kind": "photo"},
        files={"file": ("p.jpg", jpeg(gps=True), "image/jpeg")},
    )
    assert created.status_code == 201, created.text
    [listed] = client.get(f"/v1/orders/{order.id}/proofs", headers=world.h_store).json()
    endpoint = str(s3_storage.client.meta.endpoint_url)
    assert listed["url"].startswith(endpoint)
    assert listed["url_expires_at"]
    assert listed["thumbnail_url"].startswith(endpoint)
    via_url = httpx.get(listed["url"])
    assert via_url.status_code == 200
    via_api = client.get(f"/v1/orders/{order.id}/proofs/{listed['id']}", headers=world.h_store)
    assert via_api.content == via_url.content
    assert CAMERA.encode() not in via_url.content
    assert Image.open(io.BytesIO(via_url.content)).size == (64, 48)


@pytest.mark.slow
def test_a_refused_upload_writes_nothing_to_s3(
    s3_storage: S3Storage,
    client: TestClient,
    db: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(s3_storage, settings, monkeypatch)
    order = make_order(db, store=world.store, status="picked_up", courier=world.courier)
    response = client.post(
        f"/v1/orders/{order.id}/proofs",
        headers=world.h_courier,
        data={"kind": "photo"},
        files={"file": ("p.jpg", b"not an image", "image/jpeg")},
    )
    assert response.status_code == 415
    assert list(s3_storage.keys_older_than(utcnow() - FUTURE)) == []


def test_the_s3_secret_never_shows_in_the_settings_repr() -> None:
    settings = Settings(proof_s3_secret_access_key=SecretStr("wJalrXUtnFEMI-not-a-real-key"))
    assert "wJalrXUtnFEMI" not in repr(settings)
    assert "wJalrXUtnFEMI" not in str(settings.model_dump())
