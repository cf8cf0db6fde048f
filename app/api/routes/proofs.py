"""Proof endpoints: upload, list and read an order's proofs; the failure reasons."""

from typing import Annotated

from fastapi import APIRouter, Form, Header, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from app.api.deps import AdminUser, CourierUser, CurrentUser, SessionDep
from app.api.errors import responses
from app.api.idempotency import REPLAYED_HEADER
from app.api.params import PathId
from app.core.config import get_settings
from app.schemas.common import Text
from app.schemas.proofs import FailureReason, ProofPolicy, ProofRead, ProofUpload
from app.services import proofs as proofs_service
from app.services.failure_reasons import failure_reasons
from app.services.proof_storage import storage_for

router = APIRouter(tags=["proofs"], responses=responses(401))

UPLOAD_DESCRIPTION = (
    "multipart/form-data: `file` (a JPEG, PNG or HEIC photo, or a PNG signature; checked by "
    "decoding it, stored without its EXIF data), `kind` and `stage`. Only the courier holding "
    "the order uploads; an `Idempotency-Key` makes a retry answer with the first proof (200)."
)


@router.post(
    "/v1/orders/{order_id}/proofs",
    status_code=201,
    response_model=ProofRead,
    responses=responses(403, 404, 409, 413, 415, 422),
    description=UPLOAD_DESCRIPTION,
)
def upload_proof(
    order_id: PathId,
    courier: CourierUser,
    session: SessionDep,
    form: Annotated[ProofUpload, Form(media_type="multipart/form-data")],
    idempotency_key: Annotated[Text | None, Header(max_length=255)] = None,
) -> JSONResponse:
    settings = get_settings()
    storage = storage_for(settings)
    # One byte past the cap is enough to know the file is too large (a chunked body).
    file: UploadFile = form.file
    data = file.file.read(settings.proof_max_bytes + 1)
    upload = proofs_service.add_proof(
        session,
        order_id=order_id,
        courier=courier,
        kind=form.kind,
        stage=form.stage,
        data=data,
        idempotency_key=idempotency_key,
        storage=storage,
        settings=settings,
    )
    body = proofs_service.proof_read(upload.proof, storage=storage, settings=settings)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201 if upload.created else 200,
        headers=None if upload.created else {REPLAYED_HEADER: "true"},
    )


@router.get("/v1/orders/{order_id}/proofs", responses=responses(404))
def list_proofs(order_id: PathId, principal: CurrentUser, session: SessionDep) -> list[ProofRead]:
    settings = get_settings()
    storage = storage_for(settings)
    proofs = proofs_service.list_proofs(session, principal=principal, order_id=order_id)
    return [proofs_service.proof_read(p, storage=storage, settings=settings) for p in proofs]


@router.get(
    "/v1/orders/{order_id}/proofs/{proof_id}",
    response_class=Response,
    responses={**responses(404), 200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def get_proof(
    order_id: PathId,
    proof_id: PathId,
    principal: CurrentUser,
    session: SessionDep,
    thumbnail: Annotated[bool, Query(description="the small preview")] = False,
) -> Response:
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


@router.get("/v1/failure-reasons")
def list_failure_reasons(_principal: CurrentUser) -> list[FailureReason]:
    return failure_reasons(get_settings())


@router.get("/v1/orders/{order_id}/proof-policy", responses=responses(404))
def order_proof_policy(
    order_id: PathId, principal: CurrentUser, session: SessionDep
) -> ProofPolicy:
    return proofs_service.order_policy(session, principal=principal, order_id=order_id)


@router.get("/v1/admin/stores/{store_id}/proof-policy", responses=responses(403, 404))
def get_store_proof_policy(store_id: PathId, _admin: AdminUser, session: SessionDep) -> ProofPolicy:
    return proofs_service.store_policy(session, store_id=store_id)


@router.put("/v1/admin/stores/{store_id}/proof-policy", responses=responses(403, 404, 422))
def set_store_proof_policy(
    store_id: PathId, body: ProofPolicy, _admin: AdminUser, session: SessionDep
) -> ProofPolicy:
    return proofs_service.set_store_policy(
        session, store_id=store_id, policy=body, settings=get_settings()
    )
