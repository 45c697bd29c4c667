"""`evalhub history`: an evaluation's results over time, from the ledger's git history."""

from __future__ import annotations

from evalhub.app.ledger_history import ledger_history
from evalhub.app.project import Project
from evalhub.core.render_history import HistoryItem


def history(project: Project, evaluation: str, since: str | None = None) -> list[HistoryItem]:
    """(commit, committer time, entry) of every recorded result, oldest first."""
    revisions = ledger_history(project, evaluation, since)
    return [(r.revision.commit, r.revision.time, r.entry) for r in revisions if r.entry]
