"""`evalhub show`: an evaluation's current ledger entry, and the ledger commit holding it."""

from __future__ import annotations

from evalhub.app.ledger_history import current_entry, ledger_history
from evalhub.app.project import Project
from evalhub.core.errors import LedgerError
from evalhub.core.ledger import LedgerEntry


def show(project: Project, evaluation: str) -> tuple[LedgerEntry, str | None]:
    """The entry in the working tree and the latest commit that wrote it (None: not
    committed, or not a git repository)."""
    entry = current_entry(project, evaluation)
    try:
        revisions = ledger_history(project, evaluation)
    except LedgerError:  # outside git: the file alone
        revisions = []
    for revision in reversed(revisions):
        if revision.entry == entry:
            return entry, revision.revision.commit
    return entry, None
