"""Hashing the files specs name."""

from __future__ import annotations

from pathlib import Path

from evalhub.adapters.files import file_digest, find_spec_files, tree_digest


def test_tree_digest_follows_content_and_names_but_not_litter(tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    (task / "task.yaml").write_text("task: x\n")
    (task / "data.jsonl").write_text('{"q": 1}\n')
    before = tree_digest(task)
    (task / "__pycache__").mkdir()
    (task / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (task / ".DS_Store").write_bytes(b"x")
    (task / "task.yaml.swp").write_bytes(b"x")
    assert tree_digest(task) == before
    (task / "data.jsonl").write_text('{"q": 2}\n')
    changed = tree_digest(task)
    assert changed != before
    (task / "data.jsonl").rename(task / "other.jsonl")
    assert tree_digest(task) != changed  # a rename is a change


def test_file_digest_is_sha256_of_bytes(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"abc")
    assert file_digest(f) == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_find_spec_files_honours_exclude_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "evals" / "tasks").mkdir(parents=True)
    (tmp_path / "evals" / ".hidden").mkdir()
    for rel in ["evals/a.yaml", "evals/b.yml", "evals/tasks/t.yaml", "evals/.hidden/h.yaml"]:
        (tmp_path / rel).write_text("x: 1\n")
    (tmp_path / "evals" / "data.jsonl").write_text("{}\n")
    found = find_spec_files([tmp_path / "evals"], ["evals/tasks/**"], tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["evals/a.yaml", "evals/b.yml"]
