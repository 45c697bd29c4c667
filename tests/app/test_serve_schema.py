"""schemathesis against `evalhub serve`'s own OpenAPI document: generated requests to every
route (jobs, providers, collections, logs, the refused write verbs) never get a 5xx, and every
response matches the schema the server publishes at /openapi.json."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from evalhub.app.control_plane import Seams
from evalhub.app.project import load_project
from evalhub.app.serve import build
from tests.fakes import MemoryStateStore, NoEnvironments, ScriptedExecutor
from tests.project import make_project

pytestmark = pytest.mark.slow


def api_schema(root: Path) -> schemathesis.BaseSchema:
    seams = Seams(MemoryStateStore(), ScriptedExecutor({}), NoEnvironments())
    _, app = build(load_project(root), "127.0.0.1", seams)  # no worker: jobs stay queued
    return schemathesis.openapi.from_asgi("/openapi.json", app)


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def test_no_server_error_and_every_response_matches_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)
    schema = api_schema(make_project(tmp_path, "http://127.0.0.1:9/v1"))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 19  # every route of the document, the refused verbs too
    for operation in operations:

        @given(operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
