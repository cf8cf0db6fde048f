"""Cross-cutting behaviour: problem+json everywhere, request ids, health, the production guard."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.core.config import Settings


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["request_id"] == response.headers["x-request-id"]


def test_wrong_method_is_problem_json(client: TestClient) -> None:
    response = client.delete("/v1/auth/login")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_malformed_json_is_a_validation_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_validation_errors_never_echo_the_input(client: TestClient) -> None:
    response = client.post("/v1/auth/register", json={"name": "x", "password": "pw-s3"})
    # Refused for the short password (so the input did reach the validator), yet not echoed.
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert [e["loc"] for e in body["errors"]] == [["body", "password"]]
    assert "pw-s3" not in response.text


def test_unhandled_exception_is_a_500_problem_without_internals(fresh_app: FastAPI) -> None:
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM internals")

    fresh_app.include_router(router)
    with TestClient(fresh_app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "SELECT" not in response.text


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert (
        client.get("/health/live", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    assert len(client.get("/health/live").headers["x-request-id"]) == 32


def test_health_live_and_ready(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200


def test_docs_and_openapi_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/v1/auth/login_password" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "secret", ["", "changeme", "change-me-please-0123456789-abcdefgh", "short-secret"]
)
def test_production_refuses_a_missing_or_placeholder_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(zariz_env="production", jwt_secret=secret, database_url="postgresql+psycopg://x/y")


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings(zariz_env="production", jwt_secret="r" * 48, database_url="sqlite:///./x.db")


def test_production_accepts_a_real_secret() -> None:
    # conftest lowers Argon2 for speed; production refuses that, so this test restores it.
    settings = Settings(
        zariz_env="production",
        jwt_secret="Zq8" * 16,
        database_url="postgresql+psycopg://x/y",
        argon2_time_cost=3,
        argon2_memory_cost=65536,
    )
    assert settings.zariz_env == "production"


def test_cors_origins_are_a_comma_list() -> None:
    settings = Settings(cors_origins="https://a.example, https://b.example")
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "zariz_http_requests_total" in response.text


def test_database_outage_is_a_503_problem(fresh_app: FastAPI) -> None:
    from sqlalchemy import create_engine, text

    router = APIRouter()

    @router.get("/needs-db")
    def needs_db() -> None:
        # A port nothing listens on: the driver refuses the connection.
        dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
        with dead.connect() as conn:
            conn.execute(text("SELECT 1"))

    fresh_app.include_router(router)
    with TestClient(fresh_app, raise_server_exceptions=False) as client:
        response = client.get("/needs-db")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "2"


# Image decoding and S3 are used by a proof upload or an S3 configuration only: loading them in
# every API process at start cost ~17 MB of memory each (docs/performance.md).
LAZY_MODULES = ("PIL", "pillow_heif", "boto3", "botocore")


def test_the_api_process_does_not_load_image_or_s3_libraries_at_start(tmp_path: Path) -> None:
    check = (
        "import sys\n"
        "from app.main import create_app\n"
        "create_app()\n"
        f"print(sorted(m for m in {LAZY_MODULES!r} if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "ZARIZ_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path}/zariz.db",
        "PUSH_WORKER": "off",
    }
    done = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
