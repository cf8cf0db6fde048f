"""Expired access tokens: accepted by the live stream only, and only for a live session."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.core.security import create_access_token
from app.db.base import utcnow
from app.db.models import User, UserSession
from tests.builders import make_user


def expired_token(db: Session, user: User) -> tuple[str, int]:
    """A real session row and an access token for it that expired a minute ago."""
    row = UserSession(
        user_id=user.id,
        token_hash="x" * 64,
        expires_at=utcnow() + timedelta(days=1),
    )
    db.add(row)
    db.commit()
    settings = Settings(jwt_secret=get_settings().jwt_secret, access_token_ttl=-60)
    token = create_access_token(
        user_id=user.id, role=user.role, session_id=row.id, store_ids=[], settings=settings
    )
    return token, row.id


@pytest.mark.parametrize(
    "path", ["/v1/events", "/v1/orders", "/v1/auth/me", "/v1/devices", "/v1/orders/export.csv"]
)
def test_every_other_endpoint_refuses_an_expired_token(
    client: TestClient, db: Session, path: str
) -> None:
    token, _ = expired_token(db, make_user(db))
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Token expired"


@pytest.mark.parametrize("how", ["revoked", "refresh_expired", "suspended"])
def test_the_stream_refuses_an_expired_token_whose_session_is_not_live(
    client: TestClient, db: Session, how: str
) -> None:
    user = make_user(db)
    token, session_id = expired_token(db, user)
    if how == "revoked":
        db.execute(
            update(UserSession).where(UserSession.id == session_id).values(revoked_at=utcnow())
        )
    elif how == "refresh_expired":
        db.execute(
            update(UserSession)
            .where(UserSession.id == session_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    else:
        db.execute(update(User).where(User.id == user.id).values(status="suspended"))
    db.commit()
    requests: tuple[dict[str, Any], ...] = (
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"params": {"token": token}},
    )
    for request in requests:
        response = client.get("/v1/events/sse", **request)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
