"""Proofs of delivery: upload (stored before its row commits), list, read, and orphan cleanup."""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    ProofLimitReached,
    ProofNotAccepted,
)
from app.db.base import utcnow
from app.db.errors import violated_constraint
from app.db.models import (
    EventType,
    Order,
    OrderProof,
    OrderStatus,
    ProofKind,
    ProofStage,
    Role,
    Store,
)
from app.schemas.proofs import ProofPolicy, ProofRead
from app.services.auth import Principal
from app.services.events import OrderState, record_event
from app.services.orders import get_order
from app.services.proof_policy import check_policy_reasons, collects, policy_from
from app.services.proof_storage import ProofStorage
from app.services.stores import get_store

log = logging.getLogger("zariz.proofs")

MAX_KEY_LENGTH = 255
IDEMPOTENCY_CONSTRAINT = "order_proofs_uploaded_by_id_idempotency_key_key"
# The order statuses in which a proof of each stage is taken.
STAGE_STATUSES = {
    ProofStage.PICKUP: (OrderStatus.ACCEPTED, OrderStatus.PICKED_UP),
    ProofStage.DROPOFF: (OrderStatus.PICKED_UP,),
}


@dataclass(frozen=True)
class Upload:
    proof: OrderProof
    created: bool  # False: a retry with the same Idempotency-Key, answered with the first proof


def _fingerprint(order_id: int, kind: str, stage: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return hashlib.sha256(f"{order_id}\n{kind}\n{stage}\n{digest}".encode()).hexdigest()


def _by_key(session: Session, user_id: int, key: str) -> OrderProof | None:
    return session.scalar(
        select(OrderProof).where(
            OrderProof.uploaded_by_id == user_id, OrderProof.idempotency_key == key
        )
    )


def _replay(row: OrderProof, request_hash: str) -> Upload:
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different upload")
    return Upload(row, created=False)


def _held_order(session: Session, *, order_id: int, courier: Principal) -> Order:
    order = session.scalar(
        select(Order).where(
            Order.id == order_id,
            Order.deleted_at.is_(None),
            Order.courier_id == courier.user.id,
        )
    )
    if order is None:
        raise NotFound("Order not found")
    return order


def add_proof(
    session: Session,
    *,
    order_id: int,
    courier: Principal,
    kind: ProofKind,
    stage: ProofStage,
    data: bytes,
    idempotency_key: str | None,
    storage: ProofStorage,
    settings: Settings,
) -> Upload:
    """Validates, stores the bytes, then commits the row and its event.

    The object is written before the row: a crash between the two leaves an object no row names,
    which housekeeping deletes (delete_orphans); never a row whose bytes are missing.
    """
    if len(data) > settings.proof_max_bytes:
        raise PayloadTooLarge(f"A proof file may be at most {settings.proof_max_bytes} bytes")
    if idempotency_key is not None and not 0 < len(idempotency_key.strip()) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    request_hash = _fingerprint(order_id, kind, stage, data)
    me = courier.user.id
    if idempotency_key is not None:
        earlier = _by_key(session, me, idempotency_key)
        if earlier is not None:
            session.rollback()
            return _replay(earlier, request_hash)
    order = _held_order(session, order_id=order_id, courier=courier)
    if order.status not in STAGE_STATUSES[stage]:
        raise InvalidTransition(f"A {stage} proof cannot be added to a {order.status} order")
    held = session.scalar(
        select(func.count()).select_from(OrderProof).where(OrderProof.order_id == order.id)
    )
    if (held or 0) >= settings.proof_max_per_order:
        raise ProofLimitReached(f"An order holds at most {settings.proof_max_per_order} proofs")
    if stage == ProofStage.DROPOFF:
        store = session.get(Store, order.store_id)
        if not collects(policy_from(store.proof_policy if store else None), kind):
            raise ProofNotAccepted(f"This store does not collect a {kind}")
    # Imported on the first upload, not at start: Pillow and pillow-heif cost every API process
    # ~9 MB of memory, and most processes never decode an image (docs/performance.md).
    from app.services.proof_images import process

    image = process(data, kind=kind, max_pixels=settings.proof_max_pixels)
    base = f"orders/{order.id}/{uuid.uuid4().hex}"
    key, thumb_key = f"{base}.{image.image.extension}", f"{base}.thumb.{image.thumbnail.extension}"
    storage.put(key, image.image.data, image.image.content_type)
    written = [key]
    try:
        storage.put(thumb_key, image.thumbnail.data, image.thumbnail.content_type)
        written.append(thumb_key)
        proof = OrderProof(
            order_id=order.id,
            uploaded_by_id=me,
            kind=kind,
            stage=stage,
            content_type=image.image.content_type,
            size_bytes=len(image.image.data),
            width=image.width,
            height=image.height,
            storage_key=key,
            thumbnail_key=thumb_key,
            sha256=hashlib.sha256(image.image.data).hexdigest(),
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        session.add(proof)
        session.flush()
        record_event(
            session,
            order=order,
            type=EventType.PROOF_ADDED,
            actor=courier,
            before=OrderState.of(order),
            data={"proof_ids": [proof.id], "kind": str(kind), "stage": str(stage)},
        )
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        _discard(storage, written)
        if idempotency_key is None or violated_constraint(exc) != IDEMPOTENCY_CONSTRAINT:
            raise
        # A concurrent retry with the same key committed first: answer with its proof.
        earlier = _by_key(session, me, idempotency_key)
        if earlier is None:
            raise
        return _replay(earlier, request_hash)
    except BaseException:
        session.rollback()
        _discard(storage, written)
        raise
    return Upload(proof, created=True)


def _discard(storage: ProofStorage, keys: list[str]) -> None:
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # the orphan sweep removes it later
            log.warning("could not delete an uncommitted proof object", exc_info=True)


def _visible_order(session: Session, *, principal: Principal, order_id: int) -> Order:
    order = get_order(session, principal=principal, order_id=order_id)
    # A courier sees the proofs of orders they hold, not of pool orders they merely see.
    if principal.role == Role.COURIER and order.courier_id != principal.user.id:
        raise NotFound("Order not found")
    return order


def list_proofs(session: Session, *, principal: Principal, order_id: int) -> list[OrderProof]:
    _visible_order(session, principal=principal, order_id=order_id)
    proofs = list(
        session.scalars(
            select(OrderProof).where(OrderProof.order_id == order_id).order_by(OrderProof.id)
        )
    )
    session.commit()
    return proofs


def get_proof(
    session: Session, *, principal: Principal, order_id: int, proof_id: int
) -> OrderProof:
    _visible_order(session, principal=principal, order_id=order_id)
    proof = session.scalar(
        select(OrderProof).where(OrderProof.id == proof_id, OrderProof.order_id == order_id)
    )
    session.commit()
    if proof is None:
        raise NotFound("Proof not found")
    return proof


def dropoff_proofs(session: Session, order_id: int) -> list[OrderProof]:
    return list(
        session.scalars(
            select(OrderProof)
            .where(OrderProof.order_id == order_id, OrderProof.stage == ProofStage.DROPOFF)
            .order_by(OrderProof.id)
        )
    )


def delete_orphans(session: Session, *, storage: ProofStorage, grace: timedelta) -> int:
    """Deletes stored objects no proof row names, older than grace (uploads whose row never
    committed). The grace covers an upload between its write and its commit."""
    cutoff: datetime = utcnow() - grace
    removed = 0
    batch: list[str] = []

    def sweep(keys: list[str]) -> int:
        known = set(
            session.scalars(select(OrderProof.storage_key).where(OrderProof.storage_key.in_(keys)))
        ) | set(
            session.scalars(
                select(OrderProof.thumbnail_key).where(OrderProof.thumbnail_key.in_(keys))
            )
        )
        gone = 0
        for key in keys:
            if key not in known:
                storage.delete(key)
                gone += 1
        return gone

    for key in storage.keys_older_than(cutoff):
        batch.append(key)
        if len(batch) == 500:
            removed += sweep(batch)
            batch = []
    if batch:
        removed += sweep(batch)
    session.commit()
    return removed


def proof_read(proof: OrderProof, *, storage: ProofStorage, settings: Settings) -> ProofRead:
    """The proof with where its bytes are: a presigned URL where storage has them, else ours."""
    ttl = settings.proof_url_ttl_seconds
    own = f"/v1/orders/{proof.order_id}/proofs/{proof.id}"
    url = storage.presigned_url(proof.storage_key, ttl)
    thumb = storage.presigned_url(proof.thumbnail_key, ttl) if proof.thumbnail_key else None
    read = ProofRead.model_validate(proof)
    return read.model_copy(
        update={
            "url": url or own,
            "url_expires_at": utcnow() + timedelta(seconds=ttl) if url else None,
            "thumbnail_url": thumb or (f"{own}?thumbnail=true" if proof.thumbnail_key else None),
        }
    )


def proof_bytes(proof: OrderProof, *, storage: ProofStorage, thumbnail: bool) -> tuple[bytes, str]:
    if thumbnail and proof.thumbnail_key:
        kind_png = proof.thumbnail_key.endswith(".png")
        return storage.get(proof.thumbnail_key), "image/png" if kind_png else "image/jpeg"
    return storage.get(proof.storage_key), proof.content_type


@dataclass(frozen=True)
class Evidence:
    """What an outcome transition checks: the store's policy and the drop-off proofs so far."""

    policy: ProofPolicy
    kinds: frozenset[str]
    proof_ids: tuple[int, ...]


def outcome_evidence(session: Session, order_id: int) -> Evidence:
    # Read before the transition decides: proofs are only ever added, so one read before the
    # conditional UPDATE cannot miss a proof the decision needed (it may miss one uploaded in
    # the same instant, which only makes the answer a 409 the courier retries).
    raw = session.scalar(
        select(Store.proof_policy)
        .join(Order, Order.store_id == Store.id)
        .where(Order.id == order_id)
    )
    proofs = dropoff_proofs(session, order_id)
    return Evidence(
        policy=policy_from(raw),
        kinds=frozenset(p.kind for p in proofs),
        proof_ids=tuple(p.id for p in proofs),
    )


def store_policy(session: Session, *, store_id: int) -> ProofPolicy:
    store = get_store(session, store_id=store_id)
    session.commit()
    return policy_from(store.proof_policy)


def set_store_policy(
    session: Session, *, store_id: int, policy: ProofPolicy, settings: Settings
) -> ProofPolicy:
    check_policy_reasons(policy, settings)
    store = get_store(session, store_id=store_id)
    store.proof_policy = policy.model_dump(mode="json")
    session.commit()
    return policy


def order_policy(session: Session, *, principal: Principal, order_id: int) -> ProofPolicy:
    """The policy of the order's store, for whoever sees the order (the courier's checklist)."""
    order = _visible_order(session, principal=principal, order_id=order_id)
    return outcome_evidence(session, order.id).policy
