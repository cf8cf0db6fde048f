"""Console proof images: an order's proof (or its thumbnail), behind the console session."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.api.deps import get_session
from app.console.render import ConsoleRoute
from app.console.session import ConsoleUser
from app.core.config import get_settings
from app.schemas.common import MAX_ID
from app.services import proofs as proofs_service
from app.services.proof_storage import storage_for

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SessionDep = Annotated[Session, Depends(get_session)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/orders/{order_id}/proofs/{proof_id}")
def proof_image(
    order_id: ItemId,
    proof_id: ItemId,
    principal: ConsoleUser,
    session: SessionDep,
    thumbnail: Annotated[bool, Query()] = False,
) -> Response:
    """The bytes from here, never a presigned storage URL: the page's CSP allows img-src 'self'
    only, and the cookie (not a token in the URL) signs the request in. The same scoping as the
    API: another store's order, or a proof of another order, is a 404."""
    proof = proofs_service.get_proof(
        session, principal=principal, order_id=order_id, proof_id=proof_id
    )
    data, content_type = proofs_service.proof_bytes(
        proof, storage=storage_for(get_settings()), thumbnail=thumbnail
    )
    # Private: the bytes are personal data; a shared cache must not keep them.
    return Response(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=300"}
    )
