"""The password policy: one rule, kept by every way a password is set."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import InvalidInput
from app.core.security import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    check_password_policy,
    hash_password,
)
from app.db.models import Role, User
from app.schemas.auth import RegisterRequest
from app.services.users import apply_credentials, new_user
from tests.builders import auth_headers, make_user


@pytest.mark.parametrize("password", ["", "x", "7 chars", "y" * (PASSWORD_MAX_LENGTH + 1)])
def test_a_password_outside_the_bounds_is_refused_before_any_hashing(password: str) -> None:
    with pytest.raises(InvalidInput):
        check_password_policy(password)
    with pytest.raises(InvalidInput):
        hash_password(password)


def test_the_shortest_and_longest_allowed_passwords_hash() -> None:
    for password in ("z" * PASSWORD_MIN_LENGTH, "z" * PASSWORD_MAX_LENGTH):
        assert hash_password(password).startswith("$argon2id$")


def test_the_api_schema_states_the_same_bounds() -> None:
    schema = RegisterRequest.model_json_schema()["properties"]["password"]
    assert (schema["minLength"], schema["maxLength"]) == (PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH)


def test_creating_a_user_with_a_one_letter_password_creates_nothing(db: Session) -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        new_user(
            db, role=Role.ADMIN, name="Weak", email="weak@example.com", phone=None, password="x"
        )
    assert db.scalar(select(User).where(User.email == "weak@example.com")) is None


def test_setting_a_short_password_on_an_account_changes_nothing(db: Session) -> None:
    user = make_user(db)
    before = user.password_hash
    with pytest.raises(InvalidInput):
        apply_credentials(db, user=user, email=None, phone=None, password="short")
    assert user.password_hash == before


def test_an_admin_form_with_a_short_password_is_a_422_naming_the_policy(
    client: TestClient, db: Session
) -> None:
    courier = make_user(db)
    response = client.post(
        f"/v1/admin/couriers/{courier.id}/credentials",
        json={"password": "short"},
        headers=auth_headers(db, make_user(db, role=Role.ADMIN)),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "short" not in response.text
