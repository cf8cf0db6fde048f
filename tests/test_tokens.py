"""Access tokens: forged, expired, misdirected or orphaned tokens are refused."""

import time

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import Role, UserSession
from tests.builders import PASSWORD, auth_headers, login_tokens, make_user


def _claims(
    settings: Settings, user_id: int, session_id: int, **overrides: object
) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user_id),
        "role": "courier",
        "session_id": str(session_id),
        "iat": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": "x",
        "typ": "access",
    }
    claims.update(overrides)
    return claims


def _me(client: TestClient, token: str) -> int:
    return int(client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code)


@pytest.fixture
def live(db: Session) -> tuple[int, int]:
    user = make_user(db)
    access, _ = login_tokens(db, user)
    session_id = int(jwt.decode(access, options={"verify_signature": False})["session_id"])
    return user.id, session_id


def test_a_genuine_token_works(
    client: TestClient, db: Session, settings: Settings, live: tuple[int, int]
) -> None:
    token = jwt.encode(_claims(settings, *live), settings.jwt_secret, algorithm="HS256")
    assert _me(client, token) == 200


def test_alg_none_is_refused(client: TestClient, settings: Settings, live: tuple[int, int]) -> None:
    token = jwt.encode(_claims(settings, *live), key=None, algorithm="none")  # type: ignore[arg-type]
    assert _me(client, token) == 401


def test_wrong_key_is_refused(
    client: TestClient, settings: Settings, live: tuple[int, int]
) -> None:
    token = jwt.encode(_claims(settings, *live), "another-key-" + "y" * 40, algorithm="HS256")
    assert _me(client, token) == 401


def test_expired_token_is_refused(
    client: TestClient, settings: Settings, live: tuple[int, int]
) -> None:
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(settings, *live, iat=past - 600, exp=past), settings.jwt_secret, algorithm="HS256"
    )
    assert _me(client, token) == 401


@pytest.mark.parametrize("field", ["aud", "iss"])
def test_wrong_audience_or_issuer_is_refused(
    client: TestClient, settings: Settings, live: tuple[int, int], field: str
) -> None:
    user_id, session_id = live
    claims = _claims(settings, user_id, session_id)
    claims[field] = "someone-else"
    token = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    assert _me(client, token) == 401


def test_refresh_token_is_not_an_access_token(client: TestClient, db: Session) -> None:
    _, refresh = login_tokens(db, make_user(db))
    assert _me(client, refresh) == 401


def test_token_of_a_deleted_session_is_refused(
    client: TestClient, db: Session, settings: Settings, live: tuple[int, int]
) -> None:
    user_id, session_id = live
    token = jwt.encode(
        _claims(settings, user_id, session_id + 1000), settings.jwt_secret, algorithm="HS256"
    )
    assert _me(client, token) == 401


def test_token_naming_another_users_session_is_refused(
    client: TestClient, db: Session, settings: Settings, live: tuple[int, int]
) -> None:
    other = make_user(db)
    _, session_id = live
    token = jwt.encode(
        _claims(settings, other.id, session_id), settings.jwt_secret, algorithm="HS256"
    )
    assert _me(client, token) == 401


def test_revoked_session_token_is_refused_at_once(
    client: TestClient, db: Session, live: tuple[int, int], settings: Settings
) -> None:
    from app.db.base import utcnow

    user_id, session_id = live
    token = jwt.encode(
        _claims(settings, user_id, session_id), settings.jwt_secret, algorithm="HS256"
    )
    db.get(UserSession, session_id).revoked_at = utcnow()  # type: ignore[union-attr]
    db.commit()
    assert _me(client, token) == 401


def test_role_comes_from_the_database_not_the_token(
    client: TestClient, db: Session, settings: Settings, live: tuple[int, int]
) -> None:
    token = jwt.encode(
        _claims(settings, *live, role="admin"), settings.jwt_secret, algorithm="HS256"
    )
    assert (
        client.get("/v1/admin/couriers", headers={"Authorization": f"Bearer {token}"}).status_code
        == 403
    )


def test_suspending_a_courier_locks_them_out_at_once(client: TestClient, db: Session) -> None:
    courier = make_user(db)
    admin = make_user(db, role=Role.ADMIN)
    courier_headers = auth_headers(db, courier)
    assert client.get("/v1/auth/me", headers=courier_headers).status_code == 200
    response = client.post(
        f"/v1/admin/couriers/{courier.id}/status",
        json={"status": "suspended"},
        headers=auth_headers(db, admin),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    assert client.get("/v1/auth/me", headers=courier_headers).status_code == 401


def test_access_token_carries_the_users_name_and_email_for_display(
    client: TestClient, db: Session
) -> None:
    user = make_user(db, name="Dana Dispatcher", email="dana@example.com", role=Role.ADMIN)
    response = client.post(
        "/v1/auth/login_password", json={"identifier": "dana@example.com", "password": PASSWORD}
    )
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["name"] == "Dana Dispatcher"
    assert claims["email"] == "dana@example.com"
    assert claims["sub"] == str(user.id)


def test_a_phone_only_user_gets_a_name_claim_and_no_email_claim(db: Session) -> None:
    user = make_user(db, name="Yossi", email="", phone="+972501112233")
    access, _ = login_tokens(db, user)
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["name"] == "Yossi"
    assert "email" not in claims


def test_name_and_email_claims_grant_nothing(
    client: TestClient, db: Session, settings: Settings, live: tuple[int, int]
) -> None:
    admin = make_user(db, role=Role.ADMIN, email="boss@example.com")
    token = jwt.encode(
        _claims(settings, *live, name=admin.name, email=admin.email, role="admin"),
        settings.jwt_secret,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/admin/couriers", headers=headers).status_code == 403
    me = client.get("/v1/auth/me", headers=headers).json()
    assert me["id"] == live[0]
    assert me["email"] != "boss@example.com"
