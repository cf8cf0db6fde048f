"""Demo outcomes for `make run`: a failed order with its reason and photo, a signed delivery."""

import io

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.db.models import Order, OrderProof, OrderStatus, ProofKind, ProofStage, Store, User
from app.schemas.orders import OrderCreate
from app.services.auth import Principal
from app.services.order_lifecycle import claim_order, set_status
from app.services.orders import create_order
from app.services.proof_storage import storage_for
from app.services.proofs import add_proof


def _picture(kind: ProofKind) -> bytes:
    out = io.BytesIO()
    if kind == ProofKind.SIGNATURE:
        image = Image.new("LA", (360, 120), (0, 0))
        ImageDraw.Draw(image).line(
            [(20, 90), (120, 30), (200, 95), (340, 25)], fill=(0, 255), width=4
        )
        image.save(out, format="PNG")
    else:
        image = Image.new("RGB", (640, 480), (196, 160, 110))
        ImageDraw.Draw(image).rectangle([(160, 120), (480, 360)], outline=(90, 60, 30), width=12)
        image.save(out, format="JPEG")
    return out.getvalue()


def seed_outcomes(session: Session, *, store: Store, owner: User, couriers: list[User]) -> None:
    """Idempotent: does nothing once the store has any proof."""
    has_proofs = session.scalar(
        select(OrderProof.id).join(Order).where(Order.store_id == store.id).limit(1)
    )
    if has_proofs is not None:
        return
    settings = get_settings()
    storage = storage_for(settings)
    principal = Principal(user=owner, session_id=0, family_id=0, store_ids=(store.id,))
    courier = Principal(user=couriers[1], session_id=0, family_id=0, store_ids=())
    outcomes = [
        ("Tamar", "Ben-David", "Bograshov", "12", ProofKind.PHOTO, OrderStatus.FAILED),
        ("Omer", "Shapiro", "Frishman", "44", ProofKind.SIGNATURE, OrderStatus.DELIVERED),
    ]
    for first, last, street, building, kind, outcome in outcomes:
        data = OrderCreate(
            recipient_first_name=first,
            recipient_last_name=last,
            phone="+972 50 555 0142",
            street=street,
            building_no=building,
            boxes_count=1,
        )
        order = create_order(session, principal=principal, data=data)
        claim_order(session, order_id=order.id, courier=courier)
        set_status(
            session,
            order_id=order.id,
            status=OrderStatus.PICKED_UP,
            note=None,
            reason=None,
            actor=courier,
        )
        add_proof(
            session,
            order_id=order.id,
            courier=courier,
            kind=kind,
            stage=ProofStage.DROPOFF,
            data=_picture(kind),
            idempotency_key=None,
            storage=storage,
            settings=settings,
        )
        failed = outcome == OrderStatus.FAILED
        set_status(
            session,
            order_id=order.id,
            status=outcome,
            note="Box crushed at the corner" if failed else None,
            reason=None,
            reason_code="damaged" if failed else None,
            recipient_name=None if failed else f"{first} {last}",
            actor=courier,
        )
