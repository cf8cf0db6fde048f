"""Request and response bodies of the auth endpoints."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from app.core.security import PASSWORD_MAX_LENGTH
from app.schemas.common import Email, Name, Password, Phone, ReadModel, RequestModel

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
LoginPassword = Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX_LENGTH)]


class LoginRequest(RequestModel):
    identifier: Identifier
    password: LoginPassword


class TokenForm(RequestModel):
    """The OAuth2 password form (Swagger's Authorize button), held to LoginRequest's limits."""

    grant_type: Annotated[str, StringConstraints(pattern=r"^password$")] | None = None
    username: Identifier
    password: LoginPassword
    scope: Annotated[str, StringConstraints(max_length=1000)] = ""
    client_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    client_secret: Annotated[str, StringConstraints(max_length=255)] | None = None


class RefreshRequest(RequestModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class RegisterRequest(RequestModel):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    password: Password


class RegistrationRead(BaseModel):
    """The answer to every accepted sign-up, whether or not the email or phone was taken."""

    status: Literal["pending"] = "pending"
    role: Literal["courier"] = "courier"
    name: str
    email: str | None
    phone: str | None
    detail: str = "Thanks for signing up. An admin will review the account before you can sign in."


class PasswordChangeRequest(RequestModel):
    current_password: LoginPassword
    new_password: Password


class UserRead(ReadModel):
    id: int
    role: str
    status: str
    name: str
    email: str | None
    phone: str | None
    capacity_boxes: int
    created_at: datetime
    last_login_at: datetime | None
    store_ids: list[int] = []


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int
    refresh_expires_in: int
    user: UserRead
