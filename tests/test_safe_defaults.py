"""Safe defaults: the production guard, the dev secret off loopback, hidden SQL parameters."""

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.core.config import DEV_JWT_SECRET, Settings
from app.server import serve_refusal

ZARIZ = Path(sys.executable).with_name("zariz")
PG_URL = "postgresql+psycopg://zariz@127.0.0.1/never_contacted"


def production(**overrides: Any) -> Settings:
    """Production settings that pass the guard, with the given ones changed."""
    values: dict[str, Any] = {
        "zariz_env": "production",
        "jwt_secret": "kV3pYq9-Lm2x_Tr8sWz4bN7cHd1fJg6e",
        "database_url": PG_URL,
        "argon2_time_cost": 3,
        "argon2_memory_cost": 65536,
        "argon2_parallelism": 4,
    }
    return Settings(**{**values, **overrides})


class TestProductionGuard:
    def test_the_baseline_is_accepted(self) -> None:
        assert production().zariz_env == "production"

    @pytest.mark.parametrize("secret", ["a" * 32, "ab" * 16, "x" * 64])
    def test_a_secret_of_few_distinct_characters_is_refused(self, secret: str) -> None:
        with pytest.raises(ValidationError, match="JWT_SECRET"):
            production(jwt_secret=secret)

    @pytest.mark.parametrize(
        ("time_cost", "memory_cost"), [(1, 1024), (1, 19456), (2, 19455), (4, 8192)]
    )
    def test_argon2_below_the_owasp_minimum_is_refused(
        self, time_cost: int, memory_cost: int
    ) -> None:
        with pytest.raises(ValidationError, match="ARGON2"):
            production(argon2_time_cost=time_cost, argon2_memory_cost=memory_cost)

    @pytest.mark.parametrize(
        ("time_cost", "memory_cost"), [(2, 19456), (1, 47104), (5, 7168), (3, 65536)]
    )
    def test_argon2_at_an_owasp_configuration_is_accepted(
        self, time_cost: int, memory_cost: int
    ) -> None:
        settings = production(argon2_time_cost=time_cost, argon2_memory_cost=memory_cost)
        assert settings.argon2_memory_cost == memory_cost

    @pytest.mark.parametrize("ttl", [0, 3601, 3 * 365 * 24 * 3600])
    def test_an_access_token_ttl_outside_an_hour_is_refused(self, ttl: int) -> None:
        with pytest.raises(ValidationError, match="ACCESS_TOKEN_TTL"):
            production(access_token_ttl=ttl)

    def test_every_reason_is_given_at_once(self) -> None:
        with pytest.raises(ValidationError) as caught:
            production(jwt_secret="a" * 32, access_token_ttl=10**8, argon2_memory_cost=1024)
        message = str(caught.value)
        assert "JWT_SECRET" in message
        assert "ACCESS_TOKEN_TTL" in message
        assert "ARGON2" in message


class TestJwtAlgorithm:
    @pytest.mark.parametrize("algorithm", ["none", "None", "RS256", "ES256", "hs256", ""])
    @pytest.mark.parametrize("env", ["development", "test", "production"])
    def test_an_unsupported_algorithm_is_refused_in_every_environment(
        self, algorithm: str, env: str
    ) -> None:
        extra: dict[str, Any] = {"database_url": PG_URL} if env == "production" else {}
        with pytest.raises(ValidationError, match="JWT_ALGORITHM"):
            Settings(zariz_env=env, jwt_algorithm=algorithm, **extra)

    @pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
    def test_hmac_algorithms_are_accepted(self, algorithm: str) -> None:
        assert production(jwt_algorithm=algorithm).jwt_algorithm == algorithm


class TestServeRefusals:
    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "zariz.example.com"])  # noqa: S104
    def test_the_dev_secret_is_refused_beyond_loopback(self, host: str) -> None:
        settings = Settings(zariz_env="development", jwt_secret="")
        assert settings.jwt_secret == DEV_JWT_SECRET
        refusal = serve_refusal(settings, host=host, workers=1)
        assert refusal is not None
        assert "JWT_SECRET" in refusal

    @pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
    def test_the_dev_secret_is_fine_on_loopback(self, host: str) -> None:
        settings = Settings(zariz_env="development", jwt_secret="")
        assert serve_refusal(settings, host=host, workers=1) is None

    def test_a_set_secret_may_serve_beyond_loopback(self) -> None:
        settings = Settings(zariz_env="development", jwt_secret="k" * 10 + "-set-by-the-operator")
        assert serve_refusal(settings, host="0.0.0.0", workers=1) is None  # noqa: S104

    def test_memory_rate_limits_with_several_workers_are_refused_in_production(self) -> None:
        refusal = serve_refusal(
            production(rate_limit_storage="memory://"),
            host="0.0.0.0",  # noqa: S104
            workers=2,
        )
        assert refusal is not None
        assert "RATE_LIMIT_STORAGE" in refusal
        shared = production(rate_limit_storage="redis://127.0.0.1:6379/0")
        assert serve_refusal(shared, host="0.0.0.0", workers=2) is None  # noqa: S104
        one = production(rate_limit_storage="memory://")
        assert serve_refusal(one, host="0.0.0.0", workers=1) is None  # noqa: S104


def run_serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # cwd is a temp dir so a developer's .env is never read; the refusal comes before binding.
    environment = {**os.environ, "LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        [str(ZARIZ), "serve", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
class TestServeCommand:
    def test_serve_on_all_interfaces_without_a_secret_exits_2(self, tmp_path: Path) -> None:
        result = run_serve(
            tmp_path,
            "--host",
            "0.0.0.0",  # noqa: S104
            "--port",
            "1",
            ZARIZ_ENV="development",
            JWT_SECRET="",
            DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
        )
        assert result.returncode == 2
        assert "JWT_SECRET" in result.stderr
        assert "Traceback" not in result.stderr

    def test_weak_production_settings_exit_2_with_one_line(self, tmp_path: Path) -> None:
        result = run_serve(
            tmp_path,
            ZARIZ_ENV="production",
            JWT_SECRET="a" * 40,
            DATABASE_URL=PG_URL,
            ARGON2_TIME_COST="3",
            ARGON2_MEMORY_COST="65536",
        )
        assert result.returncode == 2
        assert result.stderr.startswith("zariz: settings refused: JWT_SECRET")
        assert len(result.stderr.strip().splitlines()) == 1
        assert "a" * 40 not in result.stderr

    def test_several_workers_with_memory_rate_limits_exit_2_in_production(
        self, tmp_path: Path
    ) -> None:
        result = run_serve(
            tmp_path,
            "--workers",
            "2",
            ZARIZ_ENV="production",
            JWT_SECRET="kV3pYq9-Lm2x_Tr8sWz4bN7cHd1fJg6e",
            DATABASE_URL=PG_URL,
            ARGON2_TIME_COST="3",
            ARGON2_MEMORY_COST="65536",
            RATE_LIMIT_STORAGE="memory://",
        )
        assert result.returncode == 2
        assert "RATE_LIMIT_STORAGE" in result.stderr


class TestHiddenParameters:
    def test_a_failing_statement_shows_no_bound_values(
        self, engine: Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        with pytest.raises(DBAPIError) as caught, engine.connect() as conn:
            conn.execute(
                text("SELECT :hash FROM no_such_table"), {"hash": "$argon2id$secret-hash-value"}
            )
        assert "secret-hash-value" not in str(caught.value)
        assert "secret-hash-value" not in caplog.text
        assert "no_such_table" in str(caught.value)
