"""/docs and /redoc: served from the app's own pinned assets, with no inline script."""

import re

import pytest
from fastapi.testclient import TestClient

from app.api.edge import DOCS_CSP


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_origin(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "http://" not in response.text
    assert "https://" not in response.text
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', response.text))


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_have_no_inline_script(client: TestClient, path: str) -> None:
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", client.get(path).text, re.S)
    assert scripts
    for attributes, body in scripts:
        assert 'src="' in attributes
        assert body.strip() == ""


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_get_a_csp_of_their_own_assets(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    assert csp == DOCS_CSP
    assert "script-src 'self';" in csp
    assert "unsafe-eval" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("swagger-init.js", "javascript"),
        ("redoc.standalone.js", "javascript"),
        ("favicon.png", "image/png"),
    ],
)
def test_every_asset_the_pages_name_is_served(
    client: TestClient, asset: str, media_type: str
) -> None:
    pages = client.get("/docs").text + client.get("/redoc").text
    assert f"/docs/static/{asset}" in pages
    response = client.get(f"/docs/static/{asset}")
    assert response.status_code == 200
    assert media_type in response.headers["content-type"]
    assert response.headers["cache-control"] == "no-cache"


def test_swagger_keeps_authorization_across_reloads(client: TestClient) -> None:
    init = client.get("/docs/static/swagger-init.js").text
    assert "persistAuthorization: true" in init
    # The default validator badge would call a public service from the page.
    assert "validatorUrl: null" in init


def test_the_password_flow_points_at_the_token_endpoint(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    flows = [scheme["flows"] for scheme in schemes.values() if scheme["type"] == "oauth2"]
    assert flows == [{"password": {"scopes": {}, "tokenUrl": "/v1/auth/token"}}]


def test_an_unknown_asset_is_a_404(client: TestClient) -> None:
    assert client.get("/docs/static/nothing.js").status_code == 404
