"""Auth endpoints: login (and its two aliases), refresh, logout, me, register, password."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header

from app.api.deps import ClientAddress, CurrentUser, SessionDep, bearer
from app.api.errors import responses
from app.core.errors import Unauthorized
from app.schemas.auth import (
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    RegisterRequest,
    RegistrationRead,
    TokenForm,
    TokenPair,
    UserRead,
)
from app.schemas.common import Ok, Text
from app.services import auth as auth_service
from app.services.auth import IssuedTokens

router = APIRouter(prefix="/v1/auth", tags=["auth"])

UserAgent = Annotated[Text | None, Header()]


def _pair(tokens: IssuedTokens) -> TokenPair:
    user = UserRead.model_validate(tokens.user).model_copy(update={"store_ids": tokens.store_ids})
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        refresh_expires_in=tokens.refresh_expires_in,
        user=user,
    )


LOGIN_ERRORS = responses(401, 403, 422, 429, 503)


@router.post("/login", responses=LOGIN_ERRORS)
def login(
    body: LoginRequest, session: SessionDep, client: ClientAddress, user_agent: UserAgent = None
) -> TokenPair:
    return _pair(
        auth_service.login(
            session,
            identifier=body.identifier,
            password=body.password,
            client=client,
            user_agent=user_agent,
        )
    )


@router.post("/login_password", responses=LOGIN_ERRORS)
def login_password(
    body: LoginRequest, session: SessionDep, client: ClientAddress, user_agent: UserAgent = None
) -> TokenPair:
    return login(body, session, client, user_agent)


@router.post("/token", responses=LOGIN_ERRORS)
def token(
    # A model rather than OAuth2PasswordRequestForm, so a blank username or an over-long password
    # is a 422 from the parser, not a ValidationError raised inside the route.
    form: Annotated[TokenForm, Form()],
    session: SessionDep,
    client: ClientAddress,
    user_agent: UserAgent = None,
) -> TokenPair:
    body = LoginRequest(identifier=form.username, password=form.password)
    return login(body, session, client, user_agent)


@router.post("/refresh", responses=responses(401, 422))
def refresh(body: RefreshRequest, session: SessionDep, user_agent: UserAgent = None) -> TokenPair:
    tokens = auth_service.refresh(session, refresh_token=body.refresh_token, user_agent=user_agent)
    return _pair(tokens)


@router.post("/logout", responses=responses(401, 422))
def logout(
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer)],
    body: RefreshRequest | None = None,
) -> Ok:
    """Ends the session of the refresh token in the body or, with no body (as the iOS app
    sends it), the session of the Bearer token; an expired access token of a live session
    still ends it."""
    if body is not None:
        auth_service.logout(session, refresh_token=body.refresh_token)
    elif token:
        principal = auth_service.authenticate(session, token, allow_expired=True)
        auth_service.logout_principal(session, principal=principal)
    else:
        raise Unauthorized("Send the refresh token, or the access token as a Bearer header")
    return Ok()


@router.get("/me", responses=responses(401))
def me(principal: CurrentUser) -> UserRead:
    return UserRead.model_validate(principal.user).model_copy(
        update={"store_ids": list(principal.store_ids)}
    )


@router.post("/register", status_code=201, responses=responses(403, 422, 429, 503))
def register(body: RegisterRequest, session: SessionDep, client: ClientAddress) -> RegistrationRead:
    """Signs up a courier for an admin to approve. Answers the same (201) whether or not the
    email or phone is already in use, so sign-up cannot be used to find out who has an account."""
    registration = auth_service.register(
        session,
        name=body.name,
        email=body.email,
        phone=body.phone,
        password=body.password,
        client=client,
    )
    return RegistrationRead(
        name=registration.name, email=registration.email, phone=registration.phone
    )


@router.post("/password", responses=responses(401, 403, 422, 429, 503))
def change_password(body: PasswordChangeRequest, principal: CurrentUser, session: SessionDep) -> Ok:
    auth_service.change_password(
        session,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Ok()
