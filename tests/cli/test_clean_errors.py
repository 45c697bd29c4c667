"""A clean error, never a crash report (issue 12, items 12 and 13): bad paths and odd files
given to plan, apply, schema and init end in an evalhub error that names the path, with a
hint, exit 1 and no traceback; outside text never breaks the terminal output."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result, run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project

SECRET = "sk-evalhub-test-" + "m" * 24


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@dataclass(frozen=True)
class Case:
    """`arrange(project root)` spoils something and returns the CLI arguments to run and the
    path the error must name."""

    name: str
    arrange: Callable[[Path], tuple[list[str], str]]


def plan_out_into_a_missing_directory(root: Path) -> tuple[list[str], str]:
    return ["plan", "--out", "no-such-dir/plan.json"], "no-such-dir/plan.json"


def schema_dir_that_cannot_be_created(root: Path) -> tuple[list[str], str]:
    (root / "a-file").write_text("not a directory\n")
    return ["schema", "--dir", "a-file/schemas"], "a-file/schemas"


def init_where_a_file_is_in_the_way(root: Path) -> tuple[list[str], str]:
    (root / "a-file").write_text("not a directory\n")
    return ["init", "a-file/project"], "a-file/project"


def deeply_nested_saved_plan(root: Path) -> tuple[list[str], str]:
    (root / "plan.json").write_text("[" * 100_000 + "]" * 100_000)
    return ["apply", "--yes", "plan.json"], "plan.json"


def ledger_file_is_a_directory(root: Path) -> tuple[list[str], str]:
    (root / "results" / "quality.json").mkdir(parents=True)
    return ["apply", "--yes"], "results/quality.json"


def results_is_a_file(root: Path) -> tuple[list[str], str]:
    (root / "results").write_text("not a directory\n")
    return ["apply", "--yes"], "results/quality.json"


def dataset_is_a_directory(root: Path) -> tuple[list[str], str]:
    data = root / "evals" / "data" / "qa.jsonl"
    data.unlink()
    data.mkdir()
    (data / "rows.jsonl").write_text('{"question": "q", "expected": ["a"]}\n')
    return ["apply", "--yes"], "qa.jsonl"


def dataset_is_binary(root: Path) -> tuple[list[str], str]:
    data = root / "evals" / "data" / "qa.jsonl"
    data.write_bytes(bytes(random.Random(7).randrange(128, 256) for _ in range(4096)))
    return ["apply", "--yes"], "qa.jsonl"


def unit_error_holding_markup(root: Path) -> tuple[list[str], str]:
    """A unit's error that rich would read as a closing tag: `[/x]`."""
    odd = root / "evals" / "data" / "odd[" / "x]"
    odd.mkdir(parents=True)
    (odd / "qa.jsonl").write_text("{not json\n")
    providers = root / "evals" / "providers.yaml"
    providers.write_text(providers.read_text().replace("data/qa.jsonl", '"data/odd[/x]/qa.jsonl"'))
    return ["apply", "--yes"], "odd[/x]/qa.jsonl"


CASES = [
    Case("plan --out into a missing directory", plan_out_into_a_missing_directory),
    Case("schema --dir that cannot be created", schema_dir_that_cannot_be_created),
    Case("init where a file is in the way", init_where_a_file_is_in_the_way),
    Case("a deeply nested saved plan", deeply_nested_saved_plan),
    Case("a ledger path that is a directory", ledger_file_is_a_directory),
    Case("a results that is a file", results_is_a_file),
    Case("a dataset that is a directory", dataset_is_a_directory),
    Case("a dataset that is binary", dataset_is_binary),
    Case("a unit error holding rich markup", unit_error_holding_markup),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crash_reports_where_a_clean_error_belongs(case: Case, tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path / "project", url)
        args, path = case.arrange(root)
        result = run_cli(*args, cwd=root, timeout=300)
    output = result.output
    assert result.code == 1, output
    assert "Traceback" not in output and "unexpected error" not in output, output
    assert "crashed" not in output, output
    assert path in output, output


# -- item 13: project settings --------------------------------------------------------------------


def plan(root: Path) -> Result:
    result = run_cli("plan", cwd=root)
    assert "Traceback" not in result.output, result.output
    return result


def test_an_evalhub_yaml_that_is_a_directory_is_an_error_not_ignored(tmp_path: Path) -> None:
    root = make_project(tmp_path / "outer", "http://127.0.0.1:9/v1")
    inner = root / "inner"
    (inner / "evalhub.yaml").mkdir(parents=True)
    result = plan(inner)
    assert result.code == 1 and "evalhub.yaml is not a file" in result.stderr, result.output


@pytest.mark.parametrize("spec_path", ["/etc", "../elsewhere", "evals/../../x"])
def test_specs_outside_the_project_are_refused(tmp_path: Path, spec_path: str) -> None:
    root = make_project(tmp_path / "project", "http://127.0.0.1:9/v1")
    (tmp_path / "elsewhere").mkdir()
    (root / "evalhub.yaml").write_text(f"specs: [evals, {json.dumps(spec_path)}]\n")
    result = plan(root)
    assert result.code == 1, result.output
    assert "evalhub.yaml:1:" in result.stderr and "specs[1]" in result.stderr, result.stderr
    assert "inside the repository" in result.stderr


def test_a_sqlite_uri_into_a_missing_directory_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", "http://127.0.0.1:9/v1")
    (root / "evalhub.yaml").write_text(
        "specs: [evals]\ntracking_uri: sqlite:///typo-dir/mlflow.db\n"
    )
    for command in (["plan"], ["apply", "--yes"]):
        result = run_cli(*command, cwd=root)
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert "directory that does not exist" in result.stderr, result.stderr
    assert not (root / "typo-dir").exists()
    assert not (root / ".evalhub" / "mlflow.db").exists()
