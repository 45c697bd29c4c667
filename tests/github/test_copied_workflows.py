"""The two workflows copied as they are into a repository that holds only specs (what
`evalhub init` writes, no pyproject.toml): they lint clean there, install the evalhub the
repository names (or say how to), and keep the provider environments cached even when the gate
fails, within GitHub's cache size."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.github.workflows import (
    MAIN_WORKFLOW,
    PR_WORKFLOW,
    REPO,
    StepRunner,
    describe,
    lint,
    load,
    step_named,
    steps_of,
)

FAKE_PYTHON = """\
import json, os, sys
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(["python", *sys.argv[1:]]) + "\\n")
"""


@pytest.fixture()
def specs_repo(project: Path) -> Path:
    """A specs-only repository with evalhub's workflows copied in, unchanged."""
    assert not (project / "pyproject.toml").exists()
    workflows = project / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for source in (PR_WORKFLOW, MAIN_WORKFLOW):
        shutil.copy(source, workflows / source.name)
    return project


def copied(repo: Path) -> list[Path]:
    return sorted((repo / ".github" / "workflows").glob("evalhub-*.yml"))


def test_copied_workflows_lint_clean(node: str, specs_repo: Path) -> None:
    status, findings = lint(node, *copied(specs_repo))
    assert findings == [], describe(findings)
    assert status == 0


def test_copied_workflows_name_no_file_a_specs_repository_lacks(specs_repo: Path) -> None:
    """setup-python's pip cache needs its `cache-dependency-path` to exist, and an install from
    `.` needs a pyproject.toml: a specs repository has neither."""
    for path in copied(specs_repo):
        for step in steps_of(load(path)):
            assert "cache-dependency-path" not in step.get("with", {}), (path.name, step)
            run = step.get("run", "")
            for line in run.splitlines():
                if re.search(r"pip install -e \.", line):
                    assert "pyproject.toml" in run, (path.name, step.get("name"))


@pytest.fixture()
def python_steps(steps: StepRunner) -> StepRunner:
    fake = steps.bin / "python"
    fake.write_text(f"#!{sys.executable}\n{FAKE_PYTHON}", encoding="utf-8")
    fake.chmod(0o755)
    return steps


@pytest.mark.parametrize("workflow", [PR_WORKFLOW, MAIN_WORKFLOW], ids=lambda p: p.name)
def test_install_step_in_a_specs_repository(
    python_steps: StepRunner, specs_repo: Path, workflow: Path
) -> None:
    # no requirement named: a clear error saying which variable to set, nothing installed
    proc = python_steps.run(workflow, "Install evalhub", cwd=specs_repo, EVALHUB_REQUIREMENT="")
    assert proc.returncode == 1
    assert "::error title=evalhub install::set the repository variable EVALHUB_REQUIREMENT" in (
        proc.stdout
    )
    assert python_steps.calls() == []
    # the requirement the repository names is installed, as one argument
    requirement = "evalhub-gitops @ git+https://github.com/acme/evalhub@v0.1.0"
    proc = python_steps.run(
        workflow, "Install evalhub", cwd=specs_repo, EVALHUB_REQUIREMENT=requirement
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert python_steps.calls() == [
        ["python", "-m", "pip", "install", requirement],
        ["--version"],
    ]


def test_install_step_in_evalhubs_own_repository(python_steps: StepRunner) -> None:
    proc = python_steps.run(PR_WORKFLOW, "Install evalhub", cwd=REPO, EVALHUB_REQUIREMENT="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert python_steps.calls()[0] == ["python", "-m", "pip", "install", "-e", "."]


def test_environments_are_saved_even_when_the_gate_fails() -> None:
    workflow = load(MAIN_WORKFLOW)
    steps = steps_of(workflow)
    names = [s.get("name") for s in steps]
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in steps)
    restore = step_named(workflow, "Restore the provider environments")
    save = step_named(workflow, "Save the provider environments")
    assert restore["uses"].startswith("actions/cache/restore@")
    assert save["uses"].startswith("actions/cache/save@")
    assert save["with"]["path"] == restore["with"]["path"]
    assert save["with"]["key"] == "${{ steps.envs.outputs.cache-primary-key }}"
    assert "!cancelled()" in save["if"]
    # saved before the gate and the audit, which fail the job when a result does not pass
    assert names.index("Save the provider environments") < names.index("Gate")
    assert names.index("Apply") < names.index("Save the provider environments")


@pytest.mark.parametrize(("megabytes", "saved"), [(0, "false"), (2, "true"), (6, "false")])
def test_environments_are_cached_only_within_the_limit(
    steps: StepRunner, tmp_path: Path, megabytes: int, saved: str
) -> None:
    home = tmp_path / "home"
    envs = home / ".cache" / "evalhub"
    envs.mkdir(parents=True)
    if megabytes:
        (envs / "0123456789abcdef").mkdir()
        (envs / "0123456789abcdef" / "blob").write_bytes(b"\1" * (megabytes * 1024 * 1024))
    proc = steps.run(
        MAIN_WORKFLOW, "Measure the provider environments", HOME=str(home), LIMIT_MB="4"
    )
    assert proc.returncode == 0, proc.stderr
    assert steps.outputs() == {"save": saved}
    if megabytes > 4:
        assert "::notice title=evalhub environments::" in proc.stdout
