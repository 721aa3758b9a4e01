"""The whole HTTP API against its own /openapi.json.

schemathesis generates requests for every operation the running app documents — the builtin plugins
and any plugin installed later — on SQLite and PostgreSQL: as an admin with valid (positive) and
invalid (negative) data, and as a viewer with valid data (a viewer's invalid requests stop at the
permission check). No answer may be a 5xx, and every answer must match what the document says about
that operation: status code, content type, headers and body schema.

A stateful run then follows the links schemathesis infers between operations.

The budget is ``TD_TEST_CONTRACT_EXAMPLES`` examples per operation and data mode (default 4) and
``TD_TEST_CONTRACT_SCENARIOS`` stateful scenarios (default 15); raise them for a deeper local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kernel.app import KernelApp, create_app
from kernel.settings import Settings
from tests.hardening.support import Credentials, hardening_settings, mint_credentials

EXAMPLES = int(os.environ.get("TD_TEST_CONTRACT_EXAMPLES", "4"))
STATEFUL_SCENARIOS = int(os.environ.get("TD_TEST_CONTRACT_SCENARIOS", "15"))
STREAM_SECONDS = 1.0
# No 5xx; and the status code, content type, headers and body of every answer are the documented ones.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


@pytest.fixture(scope="module")
def contract_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Settings, Credentials]:
    """A migrated database of the backend with two API tokens, shared by the module's tests."""
    root = tmp_path_factory.mktemp(f"contract-{backend}")
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{root / 'taylordash.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    settings_ = hardening_settings(data_dir=root / "data", database_url=url)
    return settings_, mint_credentials(settings_)


@pytest.fixture
def contract_target(contract_database: tuple[Settings, Credentials]) -> Iterator[tuple[KernelApp, Credentials]]:
    """The app with every plugin, started by schemathesis (which drives its lifespan) for one test."""
    settings_, credentials = contract_database
    app = create_app(settings_, configure_logs=False)
    yield app, credentials
    schemathesis_asgi.shutdown_lifespans()


@pytest.fixture
def api_schema(contract_target: tuple[KernelApp, Credentials]) -> Any:
    app, _ = contract_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.max_stream_events = 1
    return schema


def _is_stream(operation: Any) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return any("text/event-stream" in r.get("content", {}) for r in responses.values() if isinstance(r, dict))


def _fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    stream = _is_stream(operation)
    # A stream with nothing to send is read until the timeout, then judged on what it sent.
    timeout = STREAM_SECONDS if stream else 60

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(FUZZ, max_examples=min(EXAMPLES, 3) if stream else EXAMPLES)
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            _use_a_real_cursor(case, headers)
        case.call_and_validate(headers=headers, timeout=timeout, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation without parameters or body has no invalid request to make.


def _use_a_real_cursor(case: schemathesis.Case, headers: dict[str, str]) -> None:
    """A cursor is opaque: only one the API returned is valid, which no schema can generate. A
    positive case that carries one gets the ``next_cursor`` the same query returns (or none, on
    a list too short to have a second page); negative cases keep their garbage cursors."""
    if not isinstance(case.query, dict) or "cursor" not in case.query:
        return
    del case.query["cursor"]
    limit = case.query.get("limit")
    case.query["limit"] = 1
    first = case.call(headers=headers, timeout=60)
    if limit is None:
        del case.query["limit"]
    else:
        case.query["limit"] = limit
    if first.status_code == 200:
        cursor = first.json().get("next_cursor")
        if cursor is not None:
            case.query["cursor"] = cursor


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_every_operation_honours_its_contract(
    api_schema: Any, contract_target: tuple[KernelApp, Credentials], role: str
) -> None:
    headers = contract_target[1].headers(role)
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if role == "admin" else (GenerationMode.POSITIVE,)
        for mode in modes:
            try:
                _fuzz_operation(operation, mode, headers)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"--- {operation.label} [{mode.value}, {role}]\n{exc}")
    assert operations > 50, f"only {operations} operations documented"
    assert not failures, f"{len(failures)} operation(s) break their contract:\n\n" + "\n\n".join(failures)


def test_stateful_workflows_honour_the_contract(api_schema: Any, contract_target: tuple[KernelApp, Credentials]):
    """Chains of calls along the links schemathesis infers between operations (create a project,
    read it, add a component, a task, a dependency, export it, delete it …), as an admin. The calls
    that could take the run's own credentials away (deleting, changing or revoking the admin) are left
    to the stateless run, and streams too."""
    headers = contract_target[1].headers("admin")
    schema = (
        api_schema.exclude(method="DELETE", path_regex=r"^/api/v1/(users/\{user_id\}|auth/tokens/\{token_id\})$")
        .exclude(method="PATCH", path="/api/v1/users/{user_id}")
        .exclude(path_regex=r"/stream$")
    )

    class AdminWorkflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), **headers}  # the admin's token, not a generated one

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": headers, "timeout": 60}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            checked.append(case.operation.label)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:
                violations.append(f"--- {case.method} {case.formatted_path} → {response.status_code}\n{exc}")
                raise

    # Every violation is recorded when it happens. The app's state outlives each scenario, so when
    # Hypothesis replays a scenario to shrink it, the responses (and so the links it can follow)
    # may differ and Hypothesis reports its generation as flaky; the recorded violations are what
    # this test is about.
    violations: list[str] = []
    checked: list[str] = []
    try:
        AdminWorkflow.run(
            settings=settings(
                max_examples=STATEFUL_SCENARIOS,
                stateful_step_count=8,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    except Flaky:
        pass  # judged by the violations recorded below, as schemathesis's own runner does
    assert checked, "no call of the stateful run was checked"
    assert not violations, "the contract was broken:\n\n" + "\n\n".join(violations)
