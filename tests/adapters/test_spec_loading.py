"""Loading spec files from a working tree: the file system is asked about each directory once,
not about every component of every file's path (which took ~37 lstat calls a file); the files
found, their order, and what symbolic links may do stay what os.walk and realpath decided."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.files import find_spec_files, walk_spec_files
from evalhub.adapters.spec_files import WorkingTreeSpecs

EVALUATION = """apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: e{i}}}
spec: {{model: m, collection: c@1}}
"""


def spec_tree(root: Path, files: int) -> WorkingTreeSpecs:
    """A repository `root` (deep below /, like a real checkout) with `files` spec files spread
    over nested directories of one spec root."""
    specs = root / "evals"
    for i in range(files):
        path = specs / f"team-{i % 3}" / f"area-{i % 2}" / f"e{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(EVALUATION.format(i=i))
    return WorkingTreeSpecs(root, [specs], [])


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts os.lstat (what resolving a path costs, per component) and os.stat calls."""
    calls: Counter[str] = Counter()

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    with monkeypatch.context() as patch:
        patch.setattr(os, "lstat", counted("lstat", os.lstat))
        patch.setattr(os, "stat", counted("stat", os.stat))
        yield calls


def load(source: WorkingTreeSpecs, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Counter[str]]:
    with counting(monkeypatch) as calls:
        documents, problems = source.documents()
    assert problems == []
    return len(documents), calls


def test_resolving_paths_does_not_grow_with_the_number_of_spec_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    few, few_calls = load(spec_tree(tmp_path / "a" / "b" / "c" / "small", 6), monkeypatch)
    many, many_calls = load(spec_tree(tmp_path / "a" / "b" / "c" / "large", 60), monkeypatch)
    assert (few, many) == (6, 60)
    # Resolution is per root, not per file: the same number of lstat calls for 10x the files.
    assert many_calls["lstat"] == few_calls["lstat"]
    # One stat a file (the bounded read refuses a device or a pipe before opening it).
    assert many_calls["stat"] - few_calls["stat"] == 60 - 6


def tree(root: Path) -> None:
    """Nested directories, a hidden directory, hidden files, non-YAML files, a symbolic link
    to a directory (listed, not followed) and links to files inside and outside the root."""
    for rel in [
        "evals/b.yaml",
        "evals/a.yml",
        "evals/.hidden.yaml",
        "evals/notes.txt",
        "evals/z/deep/d.yaml",
        "evals/m/c.yaml",
        "evals/.git/x.yaml",
        "outside/o.yaml",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x: 1\n")
    (root / "evals" / "linked-dir").symlink_to(root / "evals" / "m")
    (root / "evals" / "m" / "inside-link.yaml").symlink_to(root / "evals" / "b.yaml")
    (root / "evals" / "outside-link.yaml").symlink_to(root / "outside" / "o.yaml")


def os_walk_spec_files(top: Path) -> list[Path]:
    """What evalhub found before: os.walk, sorted, hidden directories skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / n for n in sorted(filenames) if n.endswith((".yaml", ".yml"))]
    return found


def test_the_files_found_their_order_and_real_paths_are_os_walks_and_realpaths(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    found = walk_spec_files([tmp_path / "evals"], [], tmp_path)
    assert [f.path for f in found] == os_walk_spec_files(tmp_path / "evals")
    assert [f.real for f in found] == [os.path.realpath(f.path) for f in found]
    assert find_spec_files([tmp_path / "evals"], [], tmp_path) == [f.path for f in found]


def test_exclude_globs_match_the_real_path_relative_to_the_repository(tmp_path: Path) -> None:
    tree(tmp_path)
    found = find_spec_files([tmp_path / "evals"], ["outside/*", "evals/z/**"], tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    # outside-link.yaml is excluded through where it leads; the z tree by its own path.
    assert names == [
        "evals/.hidden.yaml",
        "evals/a.yml",
        "evals/b.yaml",
        "evals/m/c.yaml",
        "evals/m/inside-link.yaml",
    ]


def test_a_spec_file_linked_from_outside_the_root_is_refused_and_one_inside_is_read(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    documents, problems = WorkingTreeSpecs(tmp_path, [tmp_path / "evals"], []).documents()
    assert [p.message for p in problems] == [
        "spec file is a symbolic link leading outside the spec root"
    ]
    assert problems[0].file.endswith("outside-link.yaml")
    read = sorted(Path(d.file).name for d in documents)
    assert read == [".hidden.yaml", "a.yml", "b.yaml", "c.yaml", "d.yaml", "inside-link.yaml"]
    by_name = {Path(d.file).name: d.directory for d in documents}
    # The directory of a document (datasets are relative to it) is where it is written.
    assert (by_name["inside-link.yaml"], by_name["d.yaml"], by_name["b.yaml"]) == (
        "m",
        "z/deep",
        "",
    )
