"""Schemathesis against /openapi.json: no 5xx, and every response matches the documented schema."""

import os
from collections.abc import Callable

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import one_of
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from sqlalchemy.orm import Session

from app.db.models import Role
from tests.builders import auth_headers, make_order, make_store, make_store_user, make_user

# The stream never ends by itself; it has its own tests.
STREAMING = r"^/v1/events/sse$"
EXAMPLES_PER_OPERATION = 12
# Cases per operation of the bad-input fuzz. The draw is derandomized (a fixed seed), so every run
# sends the same cases; why this many is enough is in README.testing.md. FUZZ_CASES=200 (or more)
# runs a deeper one.
BAD_INPUT_EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_CASES") or 50)

pytestmark = pytest.mark.slow


@pytest.fixture
def headers(db: Session) -> dict[str, str]:
    store = make_store(db)
    make_store_user(db, store=store)
    make_order(db, store=store)
    make_user(db)  # a courier, so assign and /v1/couriers have something to work on
    return auth_headers(db, make_user(db, role=Role.ADMIN))


def fuzz_every_operation(
    app: FastAPI,
    *,
    modes: list[GenerationMode],
    examples: int,
    check: Callable[[schemathesis.Case], None],  # type: ignore[type-arg]
) -> tuple[int, list[str]]:
    """Runs `check` on `examples` cases per operation; returns the operations run and failures."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=STREAMING)
    # Explicit although it is the default: NUL is exactly what Postgres text cannot store.
    schema.config.generation.update(modes=modes, allow_x00=True)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        # An operation the schema cannot describe is itself a failure: .ok() raises on it.
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1

        strategy = one_of([operation.as_strategy(generation_mode=mode) for mode in modes])

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            check(case)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return operations, failures


def test_api_conforms_to_its_schema(app: FastAPI, headers: dict[str, str]) -> None:
    def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        # Business rules (email or phone, unique names) are not in the JSON schema, so a
        # schema-valid body may still be a clear 422: that check alone is left out.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    operations, failures = fuzz_every_operation(
        app, modes=[GenerationMode.POSITIVE], examples=EXAMPLES_PER_OPERATION, check=check
    )
    assert operations > 30
    assert not failures, "\n\n".join(failures)


@pytest.mark.postgres
def test_bad_input_is_never_a_server_error(app: FastAPI, headers: dict[str, str]) -> None:
    # Postgres, because it is the database that refuses what SQLite stores (NUL, out-of-range
    # integers and dates), so only there does unchecked input turn into a driver error.
    def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    # Negative cases (wrong types, out-of-range numbers, missing fields) alone never reach the
    # database: the schema refuses them first. Schema-valid cases with NUL in their strings do, so
    # both kinds are drawn, as `schemathesis run --mode all` does.
    operations, failures = fuzz_every_operation(
        app, modes=list(GenerationMode), examples=BAD_INPUT_EXAMPLES_PER_OPERATION, check=check
    )
    assert operations > 30
    assert not failures, "\n\n".join(failures)
