"""The report reads every ledger file's history at once (one `git log`, one `git cat-file`):
it must answer exactly what `ledger_history` answers file by file — in a linear history, and
when merges make git's per-path history simplification matter (then it asks per file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.app.compose import directory_revisions
from evalhub.app.ledger_history import ledger_histories, ledger_history
from evalhub.app.project import load_project
from evalhub.core.ledger import parse, render
from tests.app.test_ledger import entry_data, git, init_repo


@pytest.fixture(autouse=True)
def no_global_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def write(root: Path, name: str, aggregate: float) -> None:
    data = entry_data(name)
    data["aggregate"] = aggregate
    (root / "results" / f"{name}.json").write_text(render(parse(json.dumps(data))))


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "results").mkdir(parents=True)
    (root / "evalhub.yaml").write_text("specs: [evals]\n")
    (root / "evals").mkdir()
    (root / "evals" / "README").write_text("specs\n")
    init_repo(root)
    return root


def same_as_per_file(root: Path, names: list[str]) -> None:
    project = load_project(root)
    together = ledger_histories(project, names)
    for name in names:
        assert together[name] == ledger_history(project, name), name


def test_one_read_equals_per_file_reads_in_a_linear_history(tmp_path: Path) -> None:
    root = repo(tmp_path)
    for step in range(3):
        write(root, "a", 0.1 * step)
        if step != 1:
            write(root, "b", 0.2 * step)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"step {step}")
    (root / "results" / "b.json").write_text("{not json")
    git(root, "commit", "-q", "-am", "break b")
    git(root, "rm", "-q", "results/a.json")
    git(root, "commit", "-q", "-m", "remove a")
    same_as_per_file(root, ["a", "b", "never"])
    histories = ledger_histories(load_project(root), ["a", "b"])
    assert [r.entry is not None for r in histories["a"]] == [True, True, True, False]
    assert histories["b"][-1].error and "Invalid JSON" in histories["b"][-1].error
    assert directory_revisions(root, "results") is not None  # read at once


def test_one_read_equals_per_file_reads_across_merges(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root, "a", 0.5)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a")
    git(root, "checkout", "-q", "-b", "side")
    write(root, "b", 0.6)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "b on a side branch")
    git(root, "checkout", "-q", "main")
    write(root, "a", 0.7)
    git(root, "commit", "-q", "-am", "a again")
    git(root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    same_as_per_file(root, ["a", "b"])
    assert directory_revisions(root, "results") is None  # a merge: asked per file
