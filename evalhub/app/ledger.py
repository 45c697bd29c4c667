"""The results ledger on disk and in git: write `<ledger.dir>/<evaluation>.json` after each
scored evaluation; with `apply --commit`, commit exactly the changed ledger files with the
structured message of evalhub.core.ledger (optionally SSH-signed) and push the branch.

A ledger file written but not committed (a pre-commit hook refused, the process was killed
during `git commit`) is committed by the next `apply --commit`, when it still describes the
result the store has recorded for its evaluation (see `pending_entries`).

The ledger must describe committed specs, so committing is refused up front — before anything
runs — outside a git repository or when the spec directories have uncommitted changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalhub.app.compose import (
    commit_paths,
    current_branch,
    dirty_paths,
    head_commit,
    is_repository,
    push,
    write_atomic,
)
from evalhub.app.project import Project
from evalhub.core.errors import LedgerError
from evalhub.core.ledger import LedgerEntry, commit_message, ledger_path, parse, render
from evalhub.core.plan import Plan


@dataclass(frozen=True)
class CommitOptions:
    """What `apply --commit [--sign] [--push]` asked for; `sign` None: `ledger.sign_commits`."""

    commit: bool = False
    sign: bool | None = None
    push: bool = False
    signing_key: Path | None = None  # an SSH private key; None: git's own user.signingkey
    skip_ci: bool = False  # add `[skip ci]` to the message (CI loop protection)

    def signs(self, project: Project) -> bool:
        return self.sign if self.sign is not None else project.config.ledger.sign_commits


@dataclass(frozen=True)
class LedgerCommit:
    commit: str
    files: tuple[str, ...]
    signed: bool
    pushed: str | None  # the branch pushed


def check_can_commit(project: Project, options: CommitOptions) -> None:
    """Refuse `--commit` before anything runs when the result could not be tied to a commit."""
    if not options.commit:
        return
    root = project.root
    if not is_repository(root):
        raise LedgerError(
            f"--commit needs a git repository; {root} is not in one",
            "run `git init` and commit the specs, or apply without --commit",
        )
    if head_commit(root) is None:
        raise LedgerError(
            "--commit needs a commit to record results against; the repository has none",
            "commit the specs first",
        )
    dirty = dirty_paths(root, project.config.specs)
    if dirty:
        raise LedgerError(
            "refusing to commit results: the specs have uncommitted changes in " + ", ".join(dirty),
            "the ledger must describe committed specs: commit (or stash) the spec changes, "
            "then apply again; nothing was run",
        )
    if options.push and current_branch(root) is None:
        raise LedgerError(
            "--push needs a branch; HEAD is detached", "check out a branch, or drop --push"
        )
    key = options.signing_key
    if options.signs(project) and key is not None and not key.is_file():
        raise LedgerError(f"the SSH signing key {key} does not exist", "pass --signing-key PATH")


def write_entry(project: Project, entry: LedgerEntry) -> str:
    """Write the entry's file; returns its path relative to the project root."""
    relative = ledger_path(project.config.ledger.dir, entry.evaluation)
    target = project.root / relative
    text = render(entry).encode("utf-8")
    try:
        if not (target.is_file() and target.read_bytes() == text):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, text)
    except OSError as exc:  # a directory where the file belongs, a file where the directory
        raise LedgerError(
            f"cannot write the ledger file {relative}: {exc.strerror or exc}",
            f"{relative} must be a file inside a directory ({project.config.ledger.dir}); move "
            "what is in the way, then apply again: the recorded unit results are reused",
        ) from None
    return relative


def pending_entries(project: Project, plan: Plan) -> list[tuple[str, LedgerEntry]]:
    """Ledger files an earlier apply wrote but did not commit, that describe a recorded result:
    the evaluation is up to date in the store (a `noop` of `plan`) and the file is a valid
    entry of that evaluation for the fingerprint recorded. A file edited by hand for another
    fingerprint, or not a ledger entry, is left alone."""
    recorded = {
        a.evaluation: a.recorded_fingerprint
        for a in plan.actions
        if a.action == "noop" and a.recorded_fingerprint
    }
    paths = {ledger_path(project.config.ledger.dir, name): name for name in recorded}
    pending = []
    for path in dirty_paths(project.root, sorted(paths)):
        try:
            entry = parse((project.root / path).read_text(encoding="utf-8"))
        except (ValueError, OSError):  # pydantic's ValidationError is a ValueError
            continue
        name = paths[path]
        if entry.evaluation == name and entry.fingerprint == recorded[name]:
            pending.append((path, entry))
    return pending


def commit_entries(
    project: Project,
    written: Sequence[tuple[str, LedgerEntry]],
    options: CommitOptions,
    plan: Plan,
) -> LedgerCommit | None:
    """With `options.commit`, commit the ledger files among `written` (path, entry) that
    changed, and those an earlier apply left uncommitted (`pending_entries`); None when there
    is nothing to commit."""
    if not options.commit:
        return None
    root = project.root
    changed = set(dirty_paths(root, [path for path, _ in written]))
    chosen = [(path, entry) for path, entry in written if path in changed]
    chosen += [p for p in pending_entries(project, plan) if p[0] not in {c for c, _ in chosen}]
    if not chosen:
        return None
    signed = options.signs(project)
    commit = commit_paths(
        root,
        [path for path, _ in chosen],
        commit_message([entry for _, entry in chosen], options.skip_ci),
        sign=signed,
        signing_key=options.signing_key,
    )
    branch = None
    if options.push:
        branch = current_branch(root)
        if branch is None:
            raise LedgerError("--push needs a branch; HEAD is detached")
        push(root, branch, sign=signed, signing_key=options.signing_key)
    return LedgerCommit(commit, tuple(sorted(p for p, _ in chosen)), signed, branch)
