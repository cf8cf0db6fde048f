"""Concurrent retries of one upload, with real threads, HTTP and commits: one proof, one object."""

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import OrderEvent, OrderProof
from tests.builders import auth_headers, make_order, make_store, make_user
from tests.proof_files import jpeg
from tests.test_order_races import post, together

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_concurrent_retries_with_one_key_make_one_proof_and_keep_no_stray_objects(
    committed: Session,
    live_server: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root = tmp_path / "proofs"
    monkeypatch.setattr(settings, "proof_storage_dir", root)
    store = make_store(committed)
    courier = make_user(committed)
    order = make_order(committed, store=store, status="picked_up", courier=courier)
    headers = {**auth_headers(committed, courier), "Idempotency-Key": "door-photo"}
    photo = jpeg(size=(300, 200))
    calls = [
        post(
            live_server,
            f"/v1/orders/{order.id}/proofs",
            headers,
            data={"kind": "photo"},
            files={"file": ("p.jpg", photo, "image/jpeg")},
        )
        for _ in range(4)
    ]
    responses = together(calls)
    assert Counter(r.status_code for r in responses) == {201: 1, 200: 3}, [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    proofs = committed.scalar(
        select(func.count()).select_from(OrderProof).where(OrderProof.order_id == order.id)
    )
    events = committed.scalar(
        select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order.id)
    )
    assert (proofs, events) == (1, 1)
    # The losers' objects were deleted when their rows could not commit: the photo and its
    # thumbnail remain, nothing else.
    assert len([p for p in root.rglob("*") if p.is_file()]) == 2
