"""The pre-commit hooks manifest, and (integration, slow) pre-commit and the action installing
evalhub from a copy of this repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.github.workflows import (
    HOOKS,
    REPO,
    ActionRunner,
)

# -- pre-commit -------------------------------------------------------------------------------------


def test_pre_commit_hooks_manifest() -> None:
    from pre_commit.clientlib import load_manifest

    hooks = {hook["id"]: hook for hook in load_manifest(str(HOOKS))}
    assert set(hooks) == {"evalhub-validate", "evalhub-schema-check"}
    validate = hooks["evalhub-validate"]
    assert validate["entry"] == "evalhub validate"
    assert validate["language"] == "python"
    assert validate["pass_filenames"] is False
    files = re.compile(validate["files"])
    for path in ("evals/models/a.yaml", "evals/x/y/z.yml", "evalhub.yaml"):
        assert files.search(path), path
    for path in ("evals/datasets/a.jsonl", "docs/evalhub.yaml", "src/evals/a.yaml", "evalhub.yml"):
        assert not files.search(path), path
    schema = hooks["evalhub-schema-check"]
    assert schema["entry"] == "evalhub schema --check"
    assert schema["pass_filenames"] is False


@pytest.fixture(scope="module")
def hook_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """What pre-commit clones: this repository's package, README and hook manifest as they are in
    the working tree, committed in a fresh git repository. (`pre-commit try-repo` would commit
    tracked changes but not new files, and builds a new environment on every call.)"""
    root = tmp_path_factory.mktemp("hook-repo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(
        REPO / "evalhub", root / "evalhub", ignore=shutil.ignore_patterns("__pycache__")
    )
    git = ["git", "-c", "user.name=evalhub tests", "-c", "user.email=tests@evalhub.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "hooks"], cwd=root, check=True)
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    return root, rev


@pytest.mark.integration
@pytest.mark.slow
def test_pre_commit_hook_passes_valid_specs_and_points_at_a_broken_one(
    hook_repository: tuple[Path, str], project: Path, tmp_path: Path
) -> None:
    repository, rev = hook_repository
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repository}\n    rev: {rev}\n    hooks:\n      - id: evalhub-validate\n",
        encoding="utf-8",
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@evalhub.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def pre_commit() -> subprocess.CompletedProcess[str]:
        subprocess.run(["git", "add", "-A"], cwd=project, check=True)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color=never"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    passed = pre_commit()  # builds the hook's environment: pip installs evalhub from the copy
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"evalhub validate\.+Passed", passed.stdout)

    collection = project / "evals" / "collections" / "quality.yaml"
    collection.write_text(
        collection.read_text(encoding="utf-8").replace("weight:", "wieght:"), encoding="utf-8"
    )
    failed = pre_commit()
    assert failed.returncode == 1
    assert re.search(r"evalhub validate\.+Failed", failed.stdout)
    assert re.search(
        r"evals/collections/quality\.yaml:\d+:\d+: spec\.benchmarks\[0\]\.wieght: unknown field",
        failed.stdout,
    ), failed.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_action_installs_evalhub_from_its_own_checkout(
    hook_repository: tuple[Path, str], project: Path, tmp_path: Path
) -> None:
    action_path, _ = hook_repository  # the package as the action's checkout holds it
    runner = ActionRunner(tmp_path, project.parent, [])
    extra = {
        "github": {"action_path": str(action_path)},
        "steps": {"python": {"outputs": {"python-path": sys.executable}}},
    }
    # No extras: the mlflow extra adds half a minute of pip; ci.yml's `action` job installs it.
    proc, _ = runner.run("install", extra=extra, command="validate", extras="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    venv_bin = runner.temp / "evalhub-action-venv" / "bin"
    assert runner.github_path.read_text(encoding="utf-8").splitlines() == [str(venv_bin)]

    again, _ = runner.run("install", extra=extra, command="validate", extras="")
    assert again.returncode == 0 and "installed already" in again.stdout

    runner.path = [venv_bin]
    proc, outputs = runner.run("run", command="validate", **{"working-directory": "project"})
    assert proc.returncode == 0, proc.stderr
    assert outputs["exit-code"] == "0"
