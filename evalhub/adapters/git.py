"""The spec repository's git state, and the ledger's commits (git's own command line).

Queries (`head_commit`, `is_dirty`, …) answer None/False when git is missing or fails; the
ledger's writes (`commit_paths`, `push`) raise LedgerError carrying git's own message.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
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
    try:
        _run(root, ["add", "--", *paths], "could not stage the ledger files")
    except LedgerError as exc:
        hint = PENDING
        if "index.lock" in exc.message:  # a git killed mid-commit leaves its lock behind
            hint = (
                "a git process was killed mid-commit (or is still running): once none is "
                f"running, remove the index.lock file git names; {PENDING}"
            )
        raise LedgerError(exc.message, hint) from exc
    options: list[str] = []
    if sign and signing_key is not None:
        options += ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key.resolve()}"]
    args = [*options, "commit", "--only", "--file=-", "--cleanup=strip"]
    if sign:
        args.append("-S")
    try:
        _run(root, [*args, "--", *paths], "could not commit the ledger", stdin=message)
    except LedgerError as exc:
        raise LedgerError(exc.message, _commit_hint(root, exc.message, sign)) from exc
    return _run(root, ["rev-parse", "--verify", "HEAD"], "could not read the new commit")


PENDING = (
    "the ledger files stay written and staged; the next `evalhub apply --commit` commits them "
    "without running anything"
)


def _commit_hint(root: Path, said: str, sign: bool) -> str:
    """Why `git commit` failed, as far as can be told: git names a missing identity or a bad
    signing key itself; a hook that refuses prints only its own output."""
    if "identity" in said or "user.email" in said or "user.name" in said:
        return f"set git's user.name and user.email; {PENDING}"
    hooks = commit_hooks(root)
    if hooks and not (sign and "sign" in said.lower()):
        return (
            f"the repository's {' and '.join(hooks)} hook refused the commit (its output is "
            f"above): fix what it reports, or let it accept the ledger files; {PENDING}"
        )
    if sign:
        return (
            "check the signing key (`--signing-key`, git's user.signingkey) and git's user.name "
            f"and user.email; {PENDING}"
        )
    return f"check git's user.name and user.email; {PENDING}"


def commit_hooks(root: Path) -> list[str]:
    """The hooks that can refuse a commit and are installed (git's hooks directory, or
    core.hooksPath)."""
    where = _git(root, "rev-parse", "--git-path", "hooks")
    if where is None:
        return []
    directory = Path(where) if Path(where).is_absolute() else root / where
    names = ("pre-commit", "prepare-commit-msg", "commit-msg")
    return [n for n in names if os.access(directory / n, os.X_OK) and (directory / n).is_file()]


PUSH_ATTEMPTS = 3


def push(root: Path, branch: str, *, sign: bool = False, signing_key: Path | None = None) -> None:
    """Push `branch` to its remote (`branch.<name>.remote`, default origin). When the remote
    moved meanwhile (another apply, a merge), the local ledger commits are rebased onto it —
    re-signed when `sign` — and pushed again, a few times; a rebase that conflicts (the same
    ledger file changed on both sides) is undone and reported, the commit staying local."""
    remote = _git(root, "config", "--get", f"branch.{branch}.remote") or "origin"
    hint = "the ledger commit is made locally; pull (rebase) and push it yourself"
    for attempt in range(PUSH_ATTEMPTS):
        try:
            _run(
                root,
                ["push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{branch}"],
                f"could not push {branch} to {remote}",
                hint,
                timeout=PUSH_TIMEOUT,
            )
            return
        except LedgerError as exc:
            rejected = any(
                w in exc.message for w in ("rejected", "fetch first", "non-fast-forward")
            )
            if not rejected or attempt == PUSH_ATTEMPTS - 1:
                raise
        options: list[str] = []
        if sign and signing_key is not None:
            options += ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key.resolve()}"]
        try:
            _run(
                root,
                [*options, "pull", "--rebase", *(["--gpg-sign"] if sign else []), remote, branch],
                f"{branch} moved on {remote} and the ledger commit could not be rebased onto it",
                hint,
                timeout=PUSH_TIMEOUT,
            )
        except LedgerError:
            _git(root, "rebase", "--abort")
            raise


# -- reading history (audit, gate, history) ---------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """A commit that changed a file: the commit, its committer time (unix), its subject."""

    commit: str
    time: int
    subject: str


def file_revisions(root: Path, path: str, since: str | None = None) -> list[Revision]:
    """The commits that changed `path` (relative to root), oldest first; with `since`, only
    those after it (`since..HEAD`). Raises LedgerError on a bad revision."""
    spec = f"{since}..HEAD" if since else "HEAD"
    out = _run(
        root,
        ["log", "--format=%H%x00%ct%x00%s", spec, "--", path],
        f"could not read the history of {path}",
        "check the revision given to --since (a commit, tag or branch)" if since else "",
    )
    revisions = []
    for line in out.splitlines():
        commit, _, rest = line.partition("\x00")
        time, _, subject = rest.partition("\x00")
        revisions.append(Revision(commit, int(time), subject))
    return list(reversed(revisions))


def directory_revisions(root: Path, directory: str) -> dict[str, list[Revision]] | None:
    """`file_revisions` of every file under `directory` (keys relative to root), from one
    `git log`. Only when no merge commit touches the directory: in a linear history a file's
    revisions are exactly the commits whose diff names it, so this cannot differ from asking
    per file; with merges, git's per-path history simplification could, and this answers
    None (ask per file)."""
    spec = f"./{directory.strip('/') or '.'}"
    merges = _run(root, ["log", "--merges", "--format=%H", "HEAD", "--", spec], "git log")
    if merges.strip():
        return None
    fmt = "--format=%x01%H%x00%ct%x00%s"
    args = ["log", "--no-renames", "--relative", "--name-only", fmt, "HEAD", "--", spec]
    out = _run(root, args, f"could not read the history of {directory}")
    found: dict[str, list[Revision]] = {}
    current: Revision | None = None
    for line in out.splitlines():
        if line.startswith("\x01"):
            commit, _, rest = line[1:].partition("\x00")
            time, _, subject = rest.partition("\x00")
            current = Revision(commit, int(time), subject)
        elif line.strip() and current is not None:
            found.setdefault(line.strip(), []).append(current)
    return {path: list(reversed(revisions)) for path, revisions in found.items()}


@dataclass(frozen=True)
class CommitChange:
    """A commit, its parents, and the files it changed relative to its first parent (paths
    relative to root; empty for a merge, which git lists without a diff)."""

    commit: str
    parents: tuple[str, ...]
    paths: tuple[str, ...]


def commit_changes(root: Path, since: str | None = None) -> list[CommitChange]:
    """Every commit reachable from HEAD (after `since`), oldest first, with what it changed."""
    spec = f"{since}..HEAD" if since else "HEAD"
    out = _run(
        root,
        [
            "log",
            "--reverse",
            "--format=%x00%H %P",
            "--name-only",
            "--no-renames",
            "--relative",
            spec,
        ],
        "could not read the repository's history",
    )
    changes = []
    for record in out.split("\x00")[1:]:
        header, *names = record.strip("\n").split("\n")
        commit, *parents = header.split()
        changes.append(CommitChange(commit, tuple(parents), tuple(n for n in names if n)))
    return changes


def ledger_paths(root: Path, directory: str) -> list[str]:
    """Every `<directory>/*.json` path that any commit reachable from HEAD ever held."""
    out = _git(root, "log", "--format=", "--name-only", "--relative", "HEAD", "--", directory)
    prefix = directory.strip("/") + "/"
    names = {
        line.strip()
        for line in (out or "").splitlines()
        if line.strip().startswith(prefix)
        and line.strip().endswith(".json")
        and "/" not in line.strip()[len(prefix) :]
    }
    return sorted(names)


def show_file(root: Path, commit: str, path: str) -> str | None:
    """The text of `path` at `commit`; None when it does not exist there."""
    return _git_raw(root, "show", f"{commit}:{path}")


def show_prefix(root: Path) -> str:
    """Where `root` is below the repository's top level ("" at the top, else "dir/")."""
    return _git(root, "rev-parse", "--show-prefix") or ""


def commit_exists(root: Path, commit: str) -> bool:
    return _git(root, "cat-file", "-e", f"{commit}^{{commit}}") is not None


def resolve_revision(root: Path, revision: str) -> str | None:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")


@dataclass(frozen=True)
class CommitSignature:
    """What `git verify-commit` said: `good` only for a valid signature by an allowed signer."""

    good: bool
    detail: str


def verify_commit(root: Path, commit: str, allowed_signers: Path | None) -> CommitSignature:
    """Check the commit's signature (SSH via `allowed_signers`, or GPG via git's keyring)."""
    args = []
    if allowed_signers is not None:
        args += ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers.resolve()}"]
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args, "verify-commit", "--verbose", commit],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return CommitSignature(False, f"git verify-commit failed: {exc}")
    lines = [x.strip() for x in proc.stderr.splitlines() if x.strip()]
    said = next((x for x in lines if "signature" in x.lower()), lines[-1] if lines else "")
    if proc.returncode == 0:
        return CommitSignature(True, said)
    gpgsig = _git(root, "cat-file", "commit", commit) or ""
    if "\ngpgsig " not in gpgsig:
        return CommitSignature(False, "the commit is not signed")
    return CommitSignature(False, said or "the signature does not verify")


def _git_bytes(root: Path, args: Sequence[str], what: str, stdin: bytes | None = None) -> bytes:
    """git's binary output; a failure is a LedgerError saying it could not `what`."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            input=stdin,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise LedgerError(f"could not {what}: {exc}") from exc
    if proc.returncode != 0:
        raise LedgerError(f"could not {what}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def extract_tree(root: Path, commit: str, destination: Path) -> None:
    """Write the files of `commit` into `destination` (`git archive`, extracted safely)."""
    data = _git_bytes(root, ["archive", "--format=tar", commit], f"read commit {commit[:12]}")
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(destination, filter="data")


def _git_raw(root: Path, *args: str) -> str | None:
    """Like _git, keeping the output exactly (no stripping)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class GitObject:
    """A git object as git stores it: its id is sha1 of `<type> <size>\\0<content>`."""

    name: str  # what was asked: `<commit>`, `<commit>^{tree}`, `<commit>:<path>`
    sha: str
    kind: str  # commit, tree, blob
    content: bytes


def git_objects(root: Path, names: Sequence[str]) -> list[GitObject | None]:
    """The raw objects `names` resolve to (None: missing), read by one `git cat-file --batch`."""
    if not names:
        return []
    request = "".join(f"{n}\n" for n in names).encode()
    data, at = _git_bytes(root, ["cat-file", "--batch"], "read git objects", request), 0
    out: list[GitObject | None] = []
    for name in names:
        end = data.index(b"\n", at)
        header = data[at:end].decode()
        at = end + 1
        if header.endswith(" missing") or header.endswith(" ambiguous"):
            out.append(None)
            continue
        sha, kind, size = header.split(" ")
        content = data[at : at + int(size)]
        at += int(size) + 1  # the content is followed by a newline
        out.append(GitObject(name, sha, kind, content))
    return out
