"""Shared by the GitHub integration tests (tests/github/): where the workflows are, how to
read them, the offline linters, and runners that execute a workflow step or an action step the
way a GitHub runner does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
LINT_DIR = REPO / "tests" / "workflow_lint"
WORKFLOWS = REPO / ".github" / "workflows"
PR_WORKFLOW = WORKFLOWS / "evalhub-pr.yml"
MAIN_WORKFLOW = WORKFLOWS / "evalhub-main.yml"
CI_WORKFLOW = WORKFLOWS / "ci.yml"
ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
DOCS = REPO / "docs" / "github.md"
ALL_FILES = [CI_WORKFLOW, PR_WORKFLOW, MAIN_WORKFLOW, ACTION]
MARKER = "<!-- evalhub-plan -->"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(path: Path) -> Any:
    # YAML 1.2 (ruamel's safe loader): `on:` stays the string "on", as GitHub reads it.
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a workflow (all jobs, in order) or of a composite action."""
    if "jobs" in document:
        return [step for job in document["jobs"].values() for step in job.get("steps", [])]
    return list(document["runs"]["steps"])


def step_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [step for step in steps_of(document) if step.get("name") == name]
    assert len(matches) == 1, f"expected one step named {name!r}, found {len(matches)}"
    return matches[0]


def scripts_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(step name, code) of every script a step runs: `run:` and github-script's `script:`."""
    found = []
    for step in steps_of(document):
        name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
        if "run" in step:
            found.append((name, step["run"]))
        if str(step.get("uses", "")).startswith("actions/github-script@"):
            found.append((name, step["with"]["script"]))
    return found


def expressions_in_scripts(document: dict[str, Any]) -> list[str]:
    """`${{ … }}` pasted into scripts: GitHub substitutes them before the shell (or JavaScript)
    parses the code, so a value such as a pull request's title becomes code (script injection).
    Values reach scripts through `env:` instead."""
    return [
        f"{name}: ${{{{{match.group(1)}}}}}"
        for name, code in scripts_of(document)
        for match in EXPRESSION.finditer(code)
    ]


def require(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"`{tool}` is not installed: {how}", pytrace=False)
    return path


def lint(node: str, *paths: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [node, str(LINT_DIR / "lint.mjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), f"lint.mjs crashed ({proc.returncode}):\n{proc.stderr}"
    findings: list[dict[str, Any]] = json.loads(proc.stdout)["findings"]
    assert (proc.returncode == 1) == bool(findings)
    return proc.returncode, findings


def describe(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{Path(f['file']).name}:{f['line']}:{f['column']}: [{f['tool']} {f['kind']}] {f['message']}"
        for f in findings
    )


FAKE_EVALHUB = """\
import json, os, sys
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[1].upper()
fmt = sys.argv[sys.argv.index("--format") + 1].upper() if "--format" in sys.argv else "TEXT"
sys.stdout.write(os.environ.get(f"FAKE_{command}_{fmt}", f"{command.lower()} report\\n"))
sys.exit(int(os.environ.get(f"FAKE_{command}_EXIT", "0")))
"""


class StepRunner:
    """Runs a workflow step's script as a GitHub runner does (no `shell:`: `bash -e`), with a
    stand-in `evalhub` on PATH that logs its arguments and answers as told (FAKE_<COMMAND>_EXIT,
    FAKE_<COMMAND>_<FORMAT>)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        fake = self.bin / "evalhub"
        fake.write_text(f"#!{sys.executable}\n{FAKE_EVALHUB}", encoding="utf-8")
        fake.chmod(0o755)
        self.log = tmp_path / "evalhub-calls"
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        self.output = tmp_path / "github-output"
        self.env_file = tmp_path / "github-env"
        self.summary = tmp_path / "summary.md"
        for file in (self.log, self.output, self.env_file, self.summary):
            file.write_text("", encoding="utf-8")

    def run(
        self, workflow: Path, name: str, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        script = self.tmp / "step.sh"
        script.write_text(step_named(load(workflow), name)["run"], encoding="utf-8")
        return subprocess.run(
            ["bash", "-e", str(script)],
            cwd=cwd or self.tmp,
            env={
                "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                "HOME": os.environ.get("HOME", str(self.tmp)),
                "FAKE_LOG": str(self.log),
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_OUTPUT": str(self.output),
                "GITHUB_ENV": str(self.env_file),
                "GITHUB_STEP_SUMMARY": str(self.summary),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines if line)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@evalhub.invalid", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def render(value: str, context: dict[str, Any]) -> str:
    """GitHub's `${{ a.b.c }}` substitution, for the plain property paths action.yml uses."""

    def lookup(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert re.fullmatch(r"[\w-]+(\.[\w-]+)+", expression), f"not a plain path: {expression}"
        node: Any = context
        for part in expression.split("."):
            node = node[part]
        return str(node)

    return EXPRESSION.sub(lookup, value)


class ActionRunner:
    """Runs action.yml's shell steps the way a GitHub runner does (`shell: bash` is
    `bash --noprofile --norc -eo pipefail`), with RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_PATH and
    GITHUB_STEP_SUMMARY as files in a temporary directory."""

    def __init__(self, tmp_path: Path, workspace: Path, path: list[Path]) -> None:
        self.action = load(ACTION)
        self.workspace = workspace
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        self.summary = tmp_path / "summary.md"
        self.summary.touch()
        self.github_path = tmp_path / "github-path"
        self.github_path.touch()
        self.path = path

    def run(
        self, step_id: str, extra: dict[str, Any] | None = None, **inputs: str
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        step = next(s for s in self.action["runs"]["steps"] if s.get("id") == step_id)
        defaults = {name: spec.get("default", "") for name, spec in self.action["inputs"].items()}
        context = {"inputs": {**defaults, **inputs}, **(extra or {})}
        output = self.temp / f"output-{step_id}"
        output.write_text("", encoding="utf-8")
        env = {
            "PATH": os.pathsep.join([*map(str, self.path), os.environ["PATH"]]),
            "HOME": os.environ.get("HOME", str(self.temp)),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_PATH": str(self.github_path),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **{key: render(value, context) for key, value in step["env"].items()},
        }
        cwd = self.workspace / render(step.get("working-directory", "."), context)
        script = self.temp / f"{step_id}.sh"
        script.write_text(step["run"], encoding="utf-8")
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        outputs = dict(
            line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if line
        )
        return proc, outputs
