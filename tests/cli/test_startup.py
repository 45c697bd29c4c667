"""What a command imports: `evalhub --help` none of the commands, and validate, plan and an
apply with nothing to do neither MLflow nor an HTTP client nor the signing libraries (their
import is most of the start-up time; bench/start_bench.py measures it). Each command runs in a
fresh interpreter that reports its sys.modules when done: no timing, only what was imported."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from evalhub.cli.main import COMMANDS, LazyGroup, cli
from tests.adapters.test_lm_eval_adapter import make_job
from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, unit_runs

# Runs `evalhub ARGS…` through main() and writes the names in sys.modules to OUT at exit.
REPORTING = """
import json, sys
from evalhub.cli.main import main
try:
    code = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(sys.modules), out)
sys.exit(code)
"""

# Libraries only a command that records, calls an endpoint, talks to a registry or signs needs.
HEAVY = ("mlflow", "httpx", "requests", "oras", "securesystemslib", "cryptography")


@dataclass(frozen=True)
class Run:
    code: int
    output: str
    modules: set[str]

    def imported(self, *packages: str) -> list[str]:
        return sorted(
            m for m in self.modules if any(m == p or m.startswith(p + ".") for p in packages)
        )


def run_reporting(tmp_path: Path, *args: str, cwd: Path | None = None) -> Run:
    report = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.json"
    proc = subprocess.run(
        [sys.executable, "-c", REPORTING, str(report), *args],
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr, set(json.loads(report.read_text())))


# -- --help ------------------------------------------------------------------------------------


def test_help_lists_every_command_and_imports_none_of_them(tmp_path: Path) -> None:
    run = run_reporting(tmp_path, "--help")
    assert run.code == 0, run.output
    listed = [line.split()[0] for line in run.output.split("Commands:\n")[1].splitlines()]
    assert listed == list(COMMANDS)
    assert run.imported("evalhub.cli.commands", "evalhub.app", "evalhub.adapters") == []
    assert run.imported("pydantic", "ruamel", *HEAVY) == []


@pytest.mark.parametrize("width", [50, 80, 120])
def test_help_shows_what_click_would_show_from_the_imported_commands(width: int) -> None:
    ctx = click.Context(cli)
    lazy, eager = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
    cli.format_commands(ctx, lazy)
    click.Group.format_commands(cli, ctx, eager)  # imports every command, as click would
    assert lazy.getvalue() == eager.getvalue()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_the_first_paragraph_of_its_command_help(name: str) -> None:
    command = LazyGroup.get_command(cli, click.Context(cli), name)
    assert command is not None and command.help
    first = " ".join(command.help.split("\n\n")[0].split())
    assert COMMANDS[name][1] == first


# -- commands that need no store, endpoint, registry or key -------------------------------------


def test_validate_and_plan_import_neither_mlflow_nor_http_clients_nor_signing(
    tmp_path: Path,
) -> None:
    assert run_cli("init", "proj", cwd=tmp_path).code == 0
    project = tmp_path / "proj"
    validate = run_reporting(tmp_path, "validate", cwd=project)
    assert validate.code == 0, validate.output
    assert validate.imported(*HEAVY) == []
    plan = run_reporting(tmp_path, "plan", cwd=project)
    assert plan.code == 0, plan.output
    assert "to create" in plan.output  # it read the (empty) store and planned
    assert plan.imported(*HEAVY) == []
    # The other commands are not even loaded.
    loaded = plan.imported("evalhub.cli.commands")
    assert loaded == ["evalhub.cli.commands", "evalhub.cli.commands.plan_cmd"]


def test_an_apply_with_nothing_to_do_imports_neither_mlflow_nor_http_clients_nor_signing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a signing key and published results, as in CI after the first apply: the second
    apply asks the OCI layout what it holds and stops; nothing is recorded, called or signed."""
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", "sk-evalhub-test-" + "q" * 24)
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        assert run_cli("keys", "generate", cwd=root).code == 0
        first = run_reporting(tmp_path, "apply", "--yes", cwd=root)
        assert first.code == 0, first.output
        assert "published quality" in first.output
        assert first.imported("mlflow", "securesystemslib")  # the seam is real: it records
        again = run_reporting(tmp_path, "apply", "--yes", cwd=root)
        assert again.code == 0, again.output
        assert "No changes." in again.output
        assert script.generations == 5  # the second apply called no endpoint
    assert again.imported(*HEAVY) == []
    assert again.imported("evalhub.adapters.oci.layout")  # it did ask the layout


def test_an_apply_with_something_to_publish_still_refuses_a_bad_key_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is loaded only when something will be signed, but still before any unit runs."""
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", "sk-evalhub-test-" + "q" * 24)
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        key = root / ".evalhub" / "keys" / "evalhub.key"
        key.parent.mkdir(parents=True)
        key.write_text("not a PEM key\n")
        result = run_cli("apply", "--yes", cwd=root)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert "evalhub.key" in result.output, result.output
    assert script.generations == 0  # refused before any unit ran
    assert not (root / ".evalhub" / "mlflow.db").exists() or unit_runs(root) == []


# -- run-unit ----------------------------------------------------------------------------------


def test_run_unit_of_a_framework_imports_no_spec_loading_and_no_http_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit's process is part of every unit's fixed cost (bench/apply_bench.py): it parses
    the job and starts the framework, so it needs neither the spec loader (jsonschema, the YAML
    source) nor an HTTP client when the framework makes the requests."""
    monkeypatch.setenv("LM_KEY", "sk-lm-eval-secret")
    job = make_job(tmp_path)
    unit = tmp_path / "unit.json"
    unit.write_text(job.model_dump_json())
    result = tmp_path / "result.json"
    run = run_reporting(tmp_path, "run-unit", str(unit), "--out", str(result))
    assert run.code == 0, run.output
    assert json.loads(result.read_text())["status"] == "succeeded", result.read_text()
    assert run.imported("evalhub.adapters.frameworks.lm_eval")  # it did run the adapter
    spec_loading = ("jsonschema", "evalhub.core.diagnose", "evalhub.adapters.spec_files")
    assert run.imported(*spec_loading, "evalhub.adapters.yaml_source", *HEAVY) == []
