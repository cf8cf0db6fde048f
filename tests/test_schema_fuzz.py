"""Schemathesis against /openapi.json: no 5xx, and every response matches the documented schema."""

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import positive_data_acceptance
from sqlalchemy.orm import Session

from app.db.models import Role
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user

# The stream never ends by itself; it has its own tests.
STREAMING = r"^/v1/events/sse$"
EXAMPLES_PER_OPERATION = 12

pytestmark = pytest.mark.slow


@pytest.fixture
def headers(db: Session) -> dict[str, str]:
    store = make_store(db)
    make_store_user(db, store=store)
    make_order(db, store=store)
    make_user(db)  # a courier, so assign and /v1/couriers have something to work on
    return auth_headers(db, make_user(db, role=Role.ADMIN))


def test_api_conforms_to_its_schema(app: FastAPI, headers: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=STREAMING)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        # An operation the schema cannot describe is itself a failure: .ok() raises on it.
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            # Business rules (email or phone, unique names) are not in the JSON schema, so a
            # schema-valid body may still be a clear 422: that check alone is left out.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations > 30
    assert not failures, "\n\n".join(failures)
