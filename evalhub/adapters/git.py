"""The spec repository's git state, and the ledger's commits (git's own command line).

Queries (`head_commit`, `is_dirty`, …) answer None/False when git is missing or fails; the
ledger's writes (`commit_paths`, `push`) raise LedgerError carrying git's own message.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from evalhub.core.errors import LedgerError

PUSH_TIMEOUT = 300


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _run(
    root: Path,
    args: Sequence[str],
    what: str,
    hint: str = "",
    stdin: str | None = None,
    timeout: float = 60,
) -> str:
    """Run git; a failure becomes a LedgerError naming `what` failed and why (git's stderr)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            check=False,
            env=env,
        )
    except FileNotFoundError as exc:
        raise LedgerError(f"{what}: git is not installed", "install git") from exc
    except subprocess.TimeoutExpired as exc:
        raise LedgerError(f"{what}: git did not finish within {timeout:.0f} s", hint) from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise LedgerError(f"{what}: {exc}", hint) from exc
    if proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}"
        raise LedgerError(f"{what}: {detail}", hint)
    return proc.stdout.strip()


def head_commit(root: Path) -> str | None:
    """The commit checked out at `root`, or None outside a git repository."""
    return _git(root, "rev-parse", "--verify", "HEAD")


def is_repository(root: Path) -> bool:
    """Whether `root` is inside a git work tree."""
    return _git(root, "rev-parse", "--is-inside-work-tree") == "true"


def is_dirty(root: Path, paths: list[str]) -> bool:
    """Whether `paths` (relative to root) differ from the commit, untracked files included."""
    out = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *paths)
    return bool(out)


def dirty_paths(root: Path, paths: Sequence[str]) -> list[str]:
    """Those of `paths` (relative to root) that differ from HEAD or are untracked."""
    return [p for p in paths if is_dirty(root, [p])]


def remote_url(root: Path) -> str | None:
    """The `origin` remote (the artifact's `source`); credentials are stripped by the caller."""
    return _git(root, "config", "--get", "remote.origin.url") or None


def current_branch(root: Path) -> str | None:
    """The branch checked out at `root`; None on a detached HEAD or outside a repository."""
    return _git(root, "symbolic-ref", "--short", "-q", "HEAD") or None


def commit_paths(
    root: Path,
    paths: Sequence[str],
    message: str,
    *,
    sign: bool = False,
    signing_key: Path | None = None,
) -> str:
    """Commit exactly `paths` (relative to root; new files included) with `message`, leaving
    anything else staged or modified alone; returns the new commit. With `sign`, the commit is
    signed (`-S`); with `signing_key`, as SSH with that key (`gpg.format=ssh`,
    `user.signingkey`), otherwise as git's own configuration says."""
    if not paths:
        raise LedgerError("nothing to commit")
    _run(root, ["add", "--", *paths], "could not stage the ledger files")
    options: list[str] = []
    if sign and signing_key is not None:
        options += ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key.resolve()}"]
    args = [*options, "commit", "--only", "--file=-", "--cleanup=strip"]
    if sign:
        args.append("-S")
    _run(
        root,
        [*args, "--", *paths],
        "could not commit the ledger",
        "check the signing key (`--signing-key`, git's user.signingkey) and git's user.name and "
        "user.email"
        if sign
        else "check git's user.name and user.email",
        stdin=message,
    )
    return _run(root, ["rev-parse", "--verify", "HEAD"], "could not read the new commit")


def push(root: Path, branch: str) -> None:
    """Push `branch` to its remote (`branch.<name>.remote`, default origin)."""
    remote = _git(root, "config", "--get", f"branch.{branch}.remote") or "origin"
    _run(
        root,
        ["push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{branch}"],
        f"could not push {branch} to {remote}",
        "the ledger commit is made locally; pull (rebase) and push it yourself",
        timeout=PUSH_TIMEOUT,
    )
