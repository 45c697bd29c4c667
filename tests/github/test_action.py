"""The composite action (action.yml) and the project's own CI: metadata, inputs reaching scripts
only through env, and its scripts run for real against a temporary evalhub project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.github.workflows import (
    ACTION,
    CI_WORKFLOW,
    ActionRunner,
    load,
    step_named,
)

# -- the project's own CI ---------------------------------------------------------------------------


def test_ci_runs_the_project_script_and_the_action() -> None:
    workflow = load(CI_WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    assert any(".ci/run" in step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    assert [
        step["with"]["command"]
        for step in workflow["jobs"]["action"]["steps"]
        if step.get("uses") == "./"
    ] == [
        "validate",
        "plan",
    ]


# -- the composite action ---------------------------------------------------------------------------


def test_action_metadata() -> None:
    action = load(ACTION)
    assert action["name"] and action["description"]
    inputs = action["inputs"]
    assert inputs["command"]["required"] is True
    assert {name: inputs[name].get("default") for name in inputs} == {
        "command": None,
        "args": "",
        "python-version": "3.11",
        "working-directory": ".",
        "extras": "",
        "summary": "true",
    }
    assert set(action["outputs"]) == {"exit-code", "markdown"}
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "uses" in step or step.get("shell") == "bash", step
    install = step_named(action, "Install evalhub")
    assert install["env"]["EVALHUB_ACTION_PATH"] == "${{ github.action_path }}"
    run = next(step for step in action["runs"]["steps"] if step.get("id") == "run")
    assert run["working-directory"] == "${{ inputs.working-directory }}"
    # every input reaches the scripts through env
    assert run["env"] == {
        "EVALHUB_COMMAND": "${{ inputs.command }}",
        "EVALHUB_ARGS": "${{ inputs.args }}",
        "EVALHUB_SUMMARY": "${{ inputs.summary }}",
    }


def test_action_runs_validate(runner: ActionRunner) -> None:
    proc, outputs = runner.run("run", command="validate", **{"working-directory": "project"})
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"exit-code": "0", "markdown": ""}
    assert "documents valid" in proc.stdout


def test_action_plan_writes_markdown_and_pending_changes_are_no_failure(
    runner: ActionRunner,
) -> None:
    proc, outputs = runner.run(
        "run", command="plan", args="--detailed-exitcode", **{"working-directory": "project"}
    )
    assert proc.returncode == 0, proc.stderr  # 2: changes pending, an answer
    assert outputs["exit-code"] == "2"
    markdown = Path(outputs["markdown"])
    assert markdown.parent == runner.temp and markdown.suffix == ".md"
    report = markdown.read_text(encoding="utf-8")
    assert "### evalhub plan" in report and "assistant-quality" in report
    assert report in runner.summary.read_text(encoding="utf-8")


def test_action_respects_a_chosen_format(runner: ActionRunner) -> None:
    proc, outputs = runner.run(
        "run", command="plan", args="--format json", summary="false",
        **{"working-directory": "project"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"exit-code": "0", "markdown": ""}
    assert json.loads(proc.stdout)["format_version"] == 1
    assert runner.summary.read_text(encoding="utf-8") == ""


def test_action_fails_the_step_on_an_error(runner: ActionRunner) -> None:
    proc, outputs = runner.run("run", command="plan", args="--bogus")
    assert outputs["exit-code"] == "1"
    assert proc.returncode == 1


def test_action_args_are_never_evaluated(runner: ActionRunner, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    hostile = f"'; touch {pwned}; ' $(touch {pwned}) `touch {pwned}` ${{HOME}} *"
    proc, outputs = runner.run(
        "run", command="validate", args=hostile, **{"working-directory": "project"}
    )
    assert not pwned.exists()
    assert outputs["exit-code"] == "1"  # the words reached evalhub as literal paths
    assert proc.returncode == 1
    assert "$(touch" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"command": "rm -rf /"},
            "command must be validate, plan, apply, gate, audit, verify, show, history or report",
        ),
        ({"command": "validate", "args": "'unbalanced"}, "args could not be split"),
    ],
)
def test_action_refuses_bad_inputs(
    runner: ActionRunner, inputs: dict[str, str], message: str
) -> None:
    proc, outputs = runner.run("run", **inputs)
    assert proc.returncode == 1
    assert outputs == {}
    assert f"::error title=evalhub action::{message}" in proc.stdout


def test_action_refuses_odd_extras_before_installing(runner: ActionRunner, tmp_path: Path) -> None:
    extra = {
        "github": {"action_path": str(tmp_path / "no-such-checkout")},
        "steps": {"python": {"outputs": {"python-path": sys.executable}}},
    }
    proc, _ = runner.run("install", extra=extra, command="validate", extras="mlflow] $(id)")
    assert proc.returncode == 1
    assert "::error title=evalhub action::extras must be comma-separated names" in proc.stdout
    assert not (runner.temp / "evalhub-action-venv").exists()
