"""What the ledger's readers refuse (issue 12): a ledger file that says two things, a name no
one knows, trust settings changed without the previous trust root's signature, and Policies
loosened after the fact. Real git repositories, real signed results (see test_gitops)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from evalhub.core.ledger import parse
from tests.test_apply import answer
from tests.test_gitops import applied, audit, cli, failures, gate_checks, git, ledger, new_repo
from tests.test_gitops import endpoint as endpoint  # a fixture
from tests.test_gitops import environment as environment  # a fixture
from tests.test_ledger import SCHEMA, entry_data


def duplicated(data: dict[str, Any], score: float) -> dict[str, Any]:
    """The entry with its first benchmark listed once more, first, scored `score`: a reader
    keyed by name keeps the genuine (later) row, a reader listing rows shows the forged one."""
    forged = dict(data["benchmarks"][0], score=score, value=score, passed=True)
    return dict(data, benchmarks=[forged, *data["benchmarks"]])


def test_duplicate_benchmark_entries_in_a_ledger_fail_gate_audit_and_show(
    tmp_path: Path, endpoint: Any
) -> None:
    url, script = endpoint
    script.answer = lambda p: "No idea." if "restocking" in p else answer(p)  # 2 of 3 right
    root = new_repo(tmp_path, url)
    applied(root)
    data = ledger(root)
    assert data["benchmarks"][0]["key"] == "returns-qa" and data["benchmarks"][0]["score"] < 1
    forged = duplicated(data, 1.0)
    (root / "results" / "quality.json").write_text(json.dumps(forged, indent=2) + "\n")
    git(root, "commit", "-q", "-am", "one more row")

    code, report = audit(root)
    assert code == 2
    assert any(
        check == "ledger" and "'returns-qa' is listed twice" in detail
        for check, detail in failures(report)
    ), report
    code, checks = gate_checks(root)
    assert code == 2 and checks["recorded"]["ok"] is False
    assert "benchmarks: benchmark 'returns-qa' is listed twice" in checks["recorded"]["detail"]
    shown = cli(root, "show", "quality")
    assert shown.code == 1 and "listed twice" in shown.output
    history = cli(root, "history", "quality", "--format", "json")  # the sound revision only
    assert history.code == 0 and len(json.loads(history.stdout)["results"]) == 1


def test_the_ledger_schema_forbids_duplicate_benchmark_entries() -> None:
    data = entry_data()
    validator = Draft202012Validator(SCHEMA)
    validator.validate(data)
    # JSON Schema can refuse an identical copy; evalhub refuses any repeated key.
    with pytest.raises(ValidationError, match="non-unique"):
        validator.validate(dict(data, benchmarks=[*data["benchmarks"], data["benchmarks"][0]]))
    assert "one entry per key" in SCHEMA["properties"]["benchmarks"]["description"]
    with pytest.raises(ValueError, match="'returns-qa' is listed twice"):
        parse(json.dumps(duplicated(data, 1.0)))


def test_history_of_an_unknown_evaluation_is_an_error(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    # Defined but not recorded yet: an empty history, not an error.
    result = cli(root, "history", "quality")
    assert result.code == 0 and "No ledger history for quality." in result.stdout
    result = cli(root, "history", "qualty")
    assert result.code == 1
    assert "no evaluation named 'qualty'" in result.output
    assert "did you mean 'quality'?" in result.output
