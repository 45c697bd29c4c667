"""`evalhub plan`: resolve the specs, read the recorded state in bulk, diff."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from evalhub.app import compose
from evalhub.app.keys import has_signing_key
from evalhub.app.project import Project, require_project
from evalhub.app.specs import resolved_with_notes
from evalhub.app.state import open_state_store
from evalhub.core.errors import ConfigError, Diagnostic, EvalhubError, PublishError
from evalhub.core.fingerprint import Fingerprints
from evalhub.core.plan import Plan, make_plan
from evalhub.core.records import PUBLISHED_DIGEST
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.saved_plan import SavedPlan, staleness
from evalhub.core.state import State
from evalhub.core.suggest import suggest
from evalhub.ports import Publisher, StateStore


class StalePlanError(EvalhubError):
    """A saved plan no longer matches the specs or the recorded state."""


@dataclass(frozen=True)
class ProjectPlan:
    plan: Plan
    evaluations: list[ResolvedEvaluation]  # the selected evaluations, resolved
    store: str
    selection: list[str] | None
    notes: list[Diagnostic] = field(default_factory=list)  # providers without a lock

    def saved(self) -> SavedPlan:
        return SavedPlan(store=self.store, selection=self.selection, plan=self.plan)


def select(
    evaluations: list[ResolvedEvaluation], names: list[str] | None
) -> list[ResolvedEvaluation]:
    if not names:
        return evaluations
    known = {e.name: e for e in evaluations}
    for name in names:
        if name not in known:
            raise ConfigError(f"no evaluation named {name!r}", suggest(name, known, "evaluations"))
    return [known[name] for name in dict.fromkeys(names)]


def make_project_plan(
    project: Project,
    names: list[str] | None = None,
    store: StateStore | None = None,
    publishing: bool | None = None,
    publisher: Publisher | None = None,
    evaluations: list[ResolvedEvaluation] | None = None,
) -> ProjectPlan:
    """`publishing`: whether unpublished results are pending (default: a signing key exists);
    then results missing from `publisher` (default: the project's target) are pending too.
    `evaluations`: resolved already (a job submitted to `evalhub serve`), instead of the
    specs' — planned alone, so nothing else shows as orphaned."""
    require_project(project)
    notes: list[Diagnostic] = []
    store = store or open_state_store(project)
    fingerprints = Fingerprints()
    given = evaluations
    if given is not None:
        names = [e.name for e in given]
    resolved: list[ResolvedEvaluation] = []

    def unit_fingerprints() -> set[str]:
        # Resolving the specs while the store reads what needs no fingerprints: a tracking
        # server searches the heads meanwhile.
        if given is not None:
            found = given
        else:
            every, noted = resolved_with_notes(project, project.spec_source())
            found = select(every, names)
            notes.extend(noted)
        resolved.extend(found)
        return {fingerprints.unit(u) for e in found for u in e.units}

    state = store.read_alongside(unit_fingerprints)
    evaluations = resolved
    if publishing is None:
        publishing = has_signing_key(project)
    lost = _unpublished(project, state, publisher) if publishing else set()
    plan = make_plan(
        evaluations,
        state,
        orphans=not names,
        fingerprints=fingerprints,
        publishing=publishing,
        lost=lost,
    )
    return ProjectPlan(plan, evaluations, store.uri, list(names) if names else None, notes)


def _unpublished(project: Project, state: State, publisher: Publisher | None) -> set[str]:
    """The published digests of the recorded results that the configured target does not
    hold (a layout deleted, a target changed): they are published again, without model
    calls. A target that cannot be asked (down, misconfigured) loses nothing: the plan
    goes by the recorded tags alone, and publishing then reports the problem."""
    digests = {
        head.tags[PUBLISHED_DIGEST]
        for head in state.evaluation_heads().values()
        if PUBLISHED_DIGEST in head.tags
    }
    if not digests:
        return set()
    try:
        return (publisher or compose.publisher(project)).missing(digests)
    except (ConfigError, PublishError):
        return set()


def save_plan(result: ProjectPlan, path: Path) -> None:
    try:
        path.write_text(result.saved().model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the plan to {path}: {exc.strerror or exc}",
            "--out names a file in an existing, writable directory",
        ) from None


def load_saved_plan(path: Path) -> SavedPlan:
    try:
        return SavedPlan.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(
            f"cannot read plan {path}: {exc.strerror or exc}",
            "pass the file `evalhub plan --out` wrote",
        ) from None
    except RecursionError:  # JSON nested thousands deep: no plan looks like that
        raise ConfigError(
            f"{path} is not a plan saved by `evalhub plan --out`: it is nested too deeply",
            "make a new one with `evalhub plan --out PLAN.json`",
        ) from None
    except (ValueError, ValidationError) as exc:
        raise ConfigError(
            f"{path} is not a plan saved by `evalhub plan --out`: {str(exc).splitlines()[0]}",
            "make a new one with `evalhub plan --out PLAN.json`",
        ) from None


def current_plan_for(
    project: Project,
    saved: SavedPlan,
    store: StateStore | None = None,
    publishing: bool | None = None,
    publisher: Publisher | None = None,
) -> ProjectPlan:
    """Recompute the saved plan now; refuse it when anything it depended on changed."""
    current = make_project_plan(project, saved.selection, store, publishing, publisher)
    problems = staleness(saved, current.plan, current.store)
    if problems:
        raise StalePlanError(
            "the saved plan is stale: " + "; ".join(problems),
            "make a new plan with `evalhub plan --out …` and review it again",
        )
    return current
