"""The Idempotency-Key header as a dependency: order routes hand it their action, get the answer."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.api.deps import CurrentUser, SessionDep
from app.db.models import IdempotencyKey, Order
from app.schemas.common import Text
from app.services.auth import Principal
from app.services.idempotency import KeyedRequest, Outcome, run_order_action
from app.services.order_views import order_read

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass
class Idempotency:
    session: Session
    principal: Principal
    request: KeyedRequest | None
    # The {order_id} of an action route: the order the key records. None on create.
    order_id: int | None

    def create(self, make: Callable[[IdempotencyKey | None], Order]) -> JSONResponse:
        """Runs a create that names its new order on the key row it is given (201)."""
        return self._answer(self._run(make, status_code=201))

    def order(self, change: Callable[[], Order], status_code: int = 200) -> JSONResponse:
        """Runs an action on the route's order, and answers with its OrderRead."""
        return self._answer(self._run(lambda _key: change(), status_code=status_code))

    def _run(self, action: Callable[[IdempotencyKey | None], Order], status_code: int) -> Outcome:
        return run_order_action(
            self.session,
            principal=self.principal,
            request=self.request,
            status_code=status_code,
            order_id=self.order_id,
            action=action,
        )

    def _answer(self, outcome: Outcome) -> JSONResponse:
        body = order_read(self.session, outcome.order).model_dump(mode="json")
        headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
        return JSONResponse(body, status_code=outcome.status_code, headers=headers)


def _path_order_id(request: Request) -> int | None:
    # The route validates {order_id} itself (a bad one is 422 before the action runs).
    raw = request.path_params.get("order_id")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


async def get_idempotency(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    idempotency_key: Annotated[Text | None, Header(max_length=255)] = None,
) -> Idempotency:
    keyed = None
    if idempotency_key is not None:
        # Only a keyed request needs its body fingerprinted.
        keyed = KeyedRequest(
            key=idempotency_key,
            method=request.method,
            path=request.url.path,
            body=await request.body(),
        )
    return Idempotency(
        session=session, principal=principal, request=keyed, order_id=_path_order_id(request)
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
