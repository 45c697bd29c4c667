"""The ledger read back: the entry in the working tree, and every revision of it in git
history. The one reader of ledger files for gate, audit, history and show."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from evalhub.app.compose import (
    Revision,
    directory_revisions,
    file_revisions,
    git_objects,
    head_commit,
    is_repository,
    resolve_revision,
    show_file,
    show_prefix,
)
from evalhub.app.project import Project
from evalhub.core.errors import ConfigError, LedgerError
from evalhub.core.ledger import LedgerEntry, ledger_path, parse


@dataclass(frozen=True)
class LedgerRevision:
    """A commit that changed a ledger file, and the entry it left there (None: the file was
    deleted or does not parse, `error` says which)."""

    revision: Revision
    path: str
    entry: LedgerEntry | None
    error: str | None = None


DELETED = "the ledger file was deleted"


def require_repository(project: Project) -> None:
    if not is_repository(project.root) or head_commit(project.root) is None:
        raise LedgerError(
            f"{project.root} is not a git repository with commits: the ledger's history is "
            "read from git",
            "run this in the spec repository (a clone with its full history: fetch-depth 0)",
        )


def since_commit(project: Project, since: str | None) -> str | None:
    """The commit `--since` names (None: all of history)."""
    if since is None:
        return None
    commit = resolve_revision(project.root, since)
    if commit is None:
        raise ConfigError(
            f"--since {since!r} is not a commit of this repository",
            "give a commit, tag or branch (e.g. HEAD~10 or v1.2.0)",
        )
    return commit


def read_entry(text: str, where: str) -> LedgerEntry:
    """The one reader of ledger files: a file that is not a valid entry (a benchmark listed
    twice included) is a LedgerError naming the first problem and its field path."""
    try:
        return parse(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise LedgerError(
            f"{where} is not a ledger entry: {path}: {message}" if path else f"{where}: {message}",
            "`evalhub apply` writes ledger files; restore this one from git history",
        ) from exc


def read_revision(project: Project, path: str, revision: Revision) -> LedgerRevision:
    text = show_file(project.root, revision.commit, f"./{path}")
    if text is None:
        return LedgerRevision(revision, path, None, DELETED)
    try:
        return LedgerRevision(revision, path, read_entry(text, "the ledger file"))
    except LedgerError as exc:
        return LedgerRevision(revision, path, None, exc.message)


def ledger_history(
    project: Project, evaluation: str, since: str | None = None
) -> list[LedgerRevision]:
    """Every revision of the evaluation's ledger file, oldest first."""
    require_repository(project)
    path = ledger_path(project.config.ledger.dir, evaluation)
    revisions = file_revisions(project.root, f"./{path}", since_commit(project, since))
    return [read_revision(project, path, r) for r in revisions]


def ledger_histories(project: Project, evaluations: list[str]) -> dict[str, list[LedgerRevision]]:
    """`ledger_history` of each evaluation, every file's text read by one git process (a
    report over 100 evaluations × 50 revisions would otherwise start 5,000)."""
    require_repository(project)
    prefix = show_prefix(project.root)
    paths = {name: ledger_path(project.config.ledger.dir, name) for name in evaluations}
    together = directory_revisions(project.root, project.config.ledger.dir)
    revisions = {
        name: together.get(path, [])
        if together is not None
        else file_revisions(project.root, f"./{path}")
        for name, path in paths.items()
    }
    asked = [(name, r) for name in evaluations for r in revisions[name]]
    found = git_objects(project.root, [f"{r.commit}:{prefix}{paths[n]}" for n, r in asked])
    out: dict[str, list[LedgerRevision]] = {name: [] for name in evaluations}
    for (name, revision), obj in zip(asked, found, strict=True):
        path = paths[name]
        if obj is None:
            out[name].append(LedgerRevision(revision, path, None, DELETED))
            continue
        try:
            text = obj.content.decode("utf-8")
            out[name].append(LedgerRevision(revision, path, read_entry(text, "the ledger file")))
        except UnicodeDecodeError as exc:
            out[name].append(LedgerRevision(revision, path, None, f"not UTF-8 text: {exc}"))
        except LedgerError as exc:
            out[name].append(LedgerRevision(revision, path, None, exc.message))
    return out


def current_entry(project: Project, evaluation: str) -> LedgerEntry:
    """The evaluation's ledger entry in the working tree."""
    path = project.root / ledger_path(project.config.ledger.dir, evaluation)
    if not path.is_file():
        raise LedgerError(
            f"no ledger entry for {evaluation!r} ({path.relative_to(project.root)})",
            "`evalhub apply` writes it; check the evaluation's name",
        )
    shown = path.relative_to(project.root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"{shown} is not a ledger entry: {exc}") from exc
    return read_entry(text, shown)
