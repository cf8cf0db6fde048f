"""Signing a TestClient in to the console without a password check, and reading its CSRF token."""

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.console.session import ACCESS_COOKIE, COOKIE_PATH, REFRESH_COOKIE
from app.db.models import User
from tests.builders import login_tokens

CSRF = re.compile(r'data-csrf="([0-9a-f]+)"')


def sign_in(client: TestClient, db: Session, user: User) -> str:
    """Sets the console cookies of a real session row; returns the page's CSRF token."""
    access, refresh = login_tokens(db, user)
    client.cookies.set(ACCESS_COOKIE, access, domain="testserver.local", path=COOKIE_PATH)
    client.cookies.set(REFRESH_COOKIE, refresh, domain="testserver.local", path=COOKIE_PATH)
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    response = client.get("/console")
    assert response.status_code == 200, response.text
    match = CSRF.search(response.text)
    assert match is not None
    return match[1]
