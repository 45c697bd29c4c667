"""`evalhub history`: an evaluation's results over time, from the ledger's git history."""

from __future__ import annotations

from pathlib import PurePosixPath

from evalhub.adapters.git import ledger_paths
from evalhub.app.ledger_history import ledger_history
from evalhub.app.project import Project
from evalhub.app.specs import load_specs
from evalhub.core.errors import EvalhubError, LedgerError
from evalhub.core.render_history import HistoryItem
from evalhub.core.suggest import suggest


def history(project: Project, evaluation: str, since: str | None = None) -> list[HistoryItem]:
    """(commit, committer time, entry) of every recorded result, oldest first. A name that
    neither the specs nor the ledger's history know is an error, not an empty history."""
    revisions = ledger_history(project, evaluation, since)
    if not revisions:
        known = known_evaluations(project)
        if evaluation not in known:
            raise LedgerError(
                f"no evaluation named {evaluation!r}: the specs do not define it and the "
                "ledger never recorded it",
                suggest(evaluation, known, "evaluations"),
            )
    return [(r.revision.commit, r.revision.time, r.entry) for r in revisions if r.entry]


def known_evaluations(project: Project) -> set[str]:
    """Every evaluation the ledger ever recorded, and those the specs define now (as far as
    they validate: a broken spec elsewhere must not hide a name)."""
    ledger_dir = project.config.ledger.dir
    names = {PurePosixPath(p).stem for p in ledger_paths(project.root, ledger_dir)}
    try:
        loaded = load_specs(project, project.spec_source())
    except EvalhubError:
        return names
    return names | set(loaded.validation.specs.evaluations)
