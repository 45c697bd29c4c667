"""`evalhub plan` on the command line, against a real (SQLite) MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.project import make_project


def test_detailed_exitcode_and_formats(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    pending = run_cli("plan", "--detailed-exitcode", cwd=root)
    assert pending.code == 2, pending.stderr
    assert pending.stdout.rstrip().endswith(
        "Plan: 1 to create (2 units), 0 to run, 0 to rescore, 0 unchanged."
    )
    assert run_cli("plan", cwd=root).code == 0  # without the flag, pending changes are not an error

    as_json = json.loads(run_cli("plan", "--format", "json", cwd=root).stdout)
    assert as_json["format_version"] == 1 and as_json["fingerprint_version"] == 1
    assert [a["action"] for a in as_json["actions"]] == ["create"]
    assert {u["key"] for u in as_json["actions"][0]["units"]} == {"returns-qa", "refusals"}
    assert as_json["summary"] == {
        "create": 1,
        "run": 0,
        "retry": 0,
        "rescore": 0,
        "publish": 0,
        "noop": 0,
        "orphan": 0,
        "units": 2,
    }

    markdown = run_cli("plan", "--format", "markdown", cwd=root).stdout
    assert markdown.startswith("### evalhub plan\n")
    assert "| + | `quality` | create | 2 units | never recorded |" in markdown

    # planning writes nothing: no store appears
    assert not (root / ".evalhub" / "mlflow.db").exists()


def test_unknown_evaluation_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    result = run_cli("plan", "-e", "qualty", "--detailed-exitcode", cwd=root)
    assert result.code == 1
    assert "no evaluation named 'qualty'" in result.stderr
    assert "did you mean 'quality'?" in result.stderr


def test_a_corrupt_store_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    store = root / ".evalhub" / "mlflow.db"
    store.parent.mkdir()
    store.write_bytes(b"this is not a database" * 100)
    before = store.read_bytes()
    result = run_cli("plan", "--detailed-exitcode", cwd=root)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert str(store) in result.stderr
    assert store.read_bytes() == before  # nothing written


def test_spec_errors_stop_the_plan(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    (root / "evals" / "evaluations.yaml").write_text(
        "apiVersion: evalhub.dev/v1\nkind: Evaluation\n"
    )
    result = run_cli("plan", cwd=root)
    assert result.code == 1
    assert (
        "evals/evaluations.yaml:1:1: metadata: missing required field 'metadata'" in result.stderr
    )
    assert "evals/evaluations.yaml:1:1: spec: missing required field 'spec'" in result.stderr
    assert result.stderr.rstrip().endswith("error: 2 problems found in the specs")
