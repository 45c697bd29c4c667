"""The plain install (`pip install evalhub-gitops`, no extras) runs the main job — plan and
apply on the embedded default (SQLite MLflow store, OCI layout) — and only the MLflow UI needs
an extra.

The test venv has every extra installed, so the commands run in child processes that refuse to
import any third-party module outside what the plain install brings: the closure of
evalhub-gitops's requirements without extras, read from the installed metadata (pyproject).
A `sitecustomize` on PYTHONPATH puts the same fence around the unit processes apply starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, unit_runs

DISTRIBUTION = "evalhub-gitops"

FENCE = """
import importlib.abc, json, sys
ALLOWED = set(json.loads({allowed!r}))
OWNERS = json.loads({owners!r})

class Fence(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        owners = OWNERS.get(top)
        if owners and not ALLOWED.intersection(owners):
            raise ModuleNotFoundError(f"No module named {{name!r}} (fenced)", name=name)
        return None

sys.meta_path.insert(0, Fence())
"""


def plain_closure(extras: frozenset[str] = frozenset()) -> set[str]:
    """The distributions `pip install evalhub-gitops[extras]` brings, by canonical name."""
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [(DISTRIBUTION, extras)]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in seen and not wanted:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            env = dict(default_environment())
            marker = req.marker
            if marker is not None and not any(
                marker.evaluate({**env, "extra": e}) for e in (wanted or {""})
            ):
                continue
            try:
                metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                continue  # an optional dependency of a dependency, absent here
            todo.append((req.name, frozenset(req.extras)))
    return seen


def fence_dir(tmp: Path) -> Path:
    owners = {
        top: sorted(canonicalize_name(d) for d in dists)
        for top, dists in metadata.packages_distributions().items()
        if top != "evalhub"
    }
    allowed = sorted(plain_closure())
    folder = tmp / "fence"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        FENCE.format(allowed=json.dumps(allowed), owners=json.dumps(owners))
    )
    return folder


def fenced(fence: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(fence), "EVALHUB_TEST_API_KEY": "sk-plain-" + "x" * 24}
    return subprocess.run(
        [sys.executable, "-m", "evalhub.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_fence_refuses_what_only_an_extra_brings(tmp_path: Path) -> None:
    """The fence is real: flask comes only with the `ui` extra (full mlflow) and is refused,
    while the SQLite store's sqlalchemy is in the plain closure."""
    assert "flask" not in plain_closure()
    assert "flask" in plain_closure(frozenset({"ui"}))
    assert {"mlflow-skinny", "sqlalchemy", "alembic"} <= plain_closure()
    fence = fence_dir(tmp_path)
    probe = "import sqlalchemy\ntry:\n import flask\nexcept ModuleNotFoundError as e: print(e)"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(fence)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "No module named 'flask' (fenced)" in proc.stdout


def test_plain_install_plans_and_applies_on_the_embedded_default(tmp_path: Path) -> None:
    fence = fence_dir(tmp_path)
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        plan = fenced(fence, root, "plan")
        assert plan.returncode == 0, plan.stderr
        assert "2 to create" in plan.stdout or "1 to create" in plan.stdout, plan.stdout
        applied = fenced(fence, root, "apply", "--yes")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "Traceback" not in applied.stderr
        assert script.generations == 5
    assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]
    again = fenced(fence, root, "plan", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes." in again.stdout


def test_plain_install_ui_says_which_extra_it_needs(tmp_path: Path) -> None:
    fence = fence_dir(tmp_path)
    root = make_project(tmp_path / "repo", "http://127.0.0.1:9/v1")
    ui = fenced(fence, root, "ui")
    assert ui.returncode == 1
    assert "the MLflow UI is not installed" in ui.stderr
    assert "pip install 'evalhub-gitops[ui]'" in ui.stderr
    assert "Traceback" not in ui.stderr
