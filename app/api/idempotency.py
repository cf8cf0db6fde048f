"""The Idempotency-Key header as a dependency: routes hand it their action and return its result."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.deps import CurrentUser, SessionDep
from app.db.models import Order
from app.schemas.common import Text
from app.services.idempotency import run_idempotent
from app.services.order_views import order_read


@dataclass
class Idempotency:
    session: Session
    user_id: int
    key: str | None
    method: str
    path: str
    body: bytes

    def run(self, action: Callable[[], BaseModel], status_code: int = 200) -> JSONResponse:
        if self.key is None:
            return JSONResponse(action().model_dump(mode="json"), status_code=status_code)

        def act() -> tuple[int, object]:
            return status_code, action().model_dump(mode="json")

        stored = run_idempotent(
            self.session,
            user_id=self.user_id,
            key=self.key,
            method=self.method,
            path=self.path,
            body=self.body,
            action=act,
        )
        return JSONResponse(stored.body, status_code=stored.status_code)

    def order(self, change: Callable[[], Order], status_code: int = 200) -> JSONResponse:
        """Runs a service call that returns an order, and answers with its OrderRead."""
        return self.run(lambda: order_read(self.session, change()), status_code=status_code)


async def get_idempotency(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    idempotency_key: Annotated[Text | None, Header(max_length=255)] = None,
) -> Idempotency:
    return Idempotency(
        session=session,
        user_id=principal.user.id,
        key=idempotency_key,
        method=request.method,
        path=request.url.path,
        # Only a keyed request needs its body fingerprinted.
        body=await request.body() if idempotency_key is not None else b"",
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
