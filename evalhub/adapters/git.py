"""The spec repository's git state (more of git comes with the ledger)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def head_commit(root: Path) -> str | None:
    """The commit checked out at `root`, or None outside a git repository."""
    return _git(root, "rev-parse", "--verify", "HEAD")


def is_dirty(root: Path, paths: list[str]) -> bool:
    """Whether `paths` (relative to root) differ from the commit, untracked files included."""
    out = _git(root, "status", "--porcelain", "--", *paths)
    return bool(out)


def remote_url(root: Path) -> str | None:
    """The `origin` remote (the artifact's `source`); credentials are stripped by the caller."""
    return _git(root, "config", "--get", "remote.origin.url") or None
