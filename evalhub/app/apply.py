"""`evalhub apply`: run what the plan says, record it, score it, publish it, write it down.

Order of events, chosen so that nothing is lost or recorded twice:
1. under the store's apply lock, plan (or recompute a saved plan and refuse it when stale);
2. build the jobs (app/jobs.py) and gather the facts every run records (app/facts.py);
3. run each distinct unit once; the recorder (app/record.py) opens its run (running) when it
   starts and finishes it (succeeded/failed) when it ends — so an interrupted apply leaves
   running or failed runs, which the next plan retries, never "done" ones;
4. score every evaluation from the recorded results (reused and new), publish and write the
   ledger file of each complete result (app/results.py), and finish its run;
5. with `commit`, commit exactly the changed ledger files (refused up front when the specs
   have uncommitted changes, so the ledger always describes committed specs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evalhub.app import compose
from evalhub.app.facts import gather_facts, more_facts
from evalhub.app.jobs import (
    ByExecutor,
    Environments,
    check_executors,
    environment_root,
    job_batches,
)
from evalhub.app.keys import has_signing_key
from evalhub.app.ledger import CommitOptions, LedgerCommit, check_can_commit, commit_entries
from evalhub.app.locks import apply_lock
from evalhub.app.plan import ProjectPlan, current_plan_for, load_saved_plan, make_project_plan
from evalhub.app.project import Project
from evalhub.app.publish import check_publish_settings
from evalhub.app.record import Recorder, Scored, UnitReport
from evalhub.app.redaction import redacting
from evalhub.app.results import Concluded, conclude, publishing_to
from evalhub.app.state import open_state_store
from evalhub.core.errors import EvalhubError
from evalhub.core.ledger import LedgerEntry
from evalhub.core.plan import Plan
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.runs import Scheduled
from evalhub.core.scoring import EvaluationScore
from evalhub.core.secrets import protected_variables
from evalhub.ports import EnvironmentEvents, ExecutionEvents, Executor, Publisher, StateStore

RUNNABLE = ("create", "run", "retry", "rescore", "publish")


class Aborted(EvalhubError):
    """The user declined the plan."""


@dataclass
class EvaluationReport:
    name: str
    action: str
    units_run: int = 0
    units_failed: int = 0
    score: EvaluationScore | None = None
    run_id: str | None = None
    published: str | None = None  # reference@digest of the signed result
    publish_error: str | None = None  # why it is not published yet
    ledger: str | None = None  # the ledger file written (relative to the project root)
    ledger_entry: LedgerEntry | None = None


@dataclass
class ApplyReport:
    plan: Plan
    evaluations: list[EvaluationReport] = field(default_factory=list)
    units: list[UnitReport] = field(default_factory=list)
    ledger_commit: LedgerCommit | None = None

    @property
    def failed_units(self) -> list[UnitReport]:
        return [u for u in self.units if u.status != "succeeded"]

    @property
    def unpublished(self) -> list[EvaluationReport]:
        return [e for e in self.evaluations if e.publish_error is not None]

    def written(self) -> list[tuple[str, LedgerEntry]]:
        """The ledger files written, with their entries."""
        return [(e.ledger, e.ledger_entry) for e in self.evaluations if e.ledger and e.ledger_entry]


@dataclass
class ApplyOptions:
    plan_file: Path | None = None
    names: list[str] | None = None
    concurrency: int | None = None
    confirm: Callable[[Plan], bool] = lambda plan: True
    waiting: Callable[[], None] = lambda: None
    display: ExecutionEvents | None = None  # progress shown to the user
    environment_events: EnvironmentEvents | None = None  # environment builds shown to the user
    publish: bool = True  # sign and publish results (when a signing key is at hand)
    ledger: CommitOptions = field(default_factory=CommitOptions)  # commit the ledger files
    # Resolved already, applied instead of the specs' (a job submitted to `evalhub serve`).
    evaluations: list[ResolvedEvaluation] | None = None


def apply(
    project: Project,
    options: ApplyOptions,
    store: StateStore | None = None,
    executor: Executor | None = None,
    environments: Environments | None = None,
    publisher: Publisher | None = None,
) -> ApplyReport:
    check_can_commit(project, options.ledger)  # before anything runs
    store = store or open_state_store(project)
    publishing = options.publish and has_signing_key(project)
    # A wrong registry setting fails before any work (the plan asks the target what it holds).
    publisher = (publisher or compose.publisher(project)) if publishing else None
    with apply_lock(project, store.identity, options.waiting):
        store.fail_interrupted_runs()  # left running by a killed apply: none is live now
        current = _current_plan(project, options, store, publisher)
        report = ApplyReport(current.plan)
        if not any(a.action in RUNNABLE for a in current.plan.actions):
            report.ledger_commit = commit_entries(project, [], options.ledger, current.plan)
            return report
        if publisher is not None:  # the key, before any unit runs; not loaded when none would
            check_publish_settings(project, publisher)  # be signed (no signing library imported)
        if not options.confirm(current.plan):
            raise Aborted("apply cancelled; nothing was run")
        scheduled = _scheduled(current)
        kinds = check_executors(project, scheduled)
        concurrency = options.concurrency or project.config.executors.concurrency
        # Units and their outside text reach the store only through the redactor; a unit's
        # process never gets the project's protected variables (evalhub.core.secrets).
        protected = protected_variables(project.config)
        if executor is None:  # built before any unit runs: no engine fails now, not midway
            executions = {item.name: item.evaluation.execution for item in scheduled}
            built = {
                kind: compose.executor(project, kind, concurrency, protected, executions)
                for kind in kinds
            }
            executor = ByExecutor(project, scheduled, built)
        _execute(
            project,
            scheduled,
            _Seams(
                redacting(store, project.config, current.evaluations),
                executor,
                environments
                or compose.environment_store(
                    environment_root(project), project.config.executors.installer
                ),
                options.display,
                publisher,
                options.environment_events,
            ),
            report,
            ledger=options.evaluations is None,
        )
        if options.ledger.commit:
            report.ledger_commit = commit_entries(
                project, report.written(), options.ledger, current.plan
            )
        return report


def _current_plan(
    project: Project, options: ApplyOptions, store: StateStore, publisher: Publisher | None
) -> ProjectPlan:
    """The plan to apply: made now, or the saved one recomputed (refused when stale); with a
    publisher, results missing from its target are pending too."""
    publishing = publisher is not None
    if options.evaluations is not None:
        return make_project_plan(
            project, None, store, publishing, publisher, evaluations=options.evaluations
        )
    if options.plan_file is None:
        return make_project_plan(project, options.names, store, publishing, publisher)
    saved = load_saved_plan(options.plan_file)
    return current_plan_for(project, saved, store, publishing, publisher)


def _scheduled(current: ProjectPlan) -> list[Scheduled]:
    actions = {a.evaluation: a for a in current.plan.actions if a.action in RUNNABLE}
    return [Scheduled(e, actions[e.name]) for e in current.evaluations if e.name in actions]


@dataclass(frozen=True)
class _Seams:
    store: StateStore
    executor: Executor
    environments: Environments
    display: ExecutionEvents | None
    publisher: Publisher | None  # None: not publishing
    environment_events: EnvironmentEvents | None = None


def _execute(
    project: Project,
    scheduled: list[Scheduled],
    seams: _Seams,
    report: ApplyReport,
    ledger: bool = True,
) -> None:
    """Run the units, record them, score every evaluation, publish and write down results
    (in the ledger only with `ledger`: evaluations of the specs). Units run in batches as
    their environments become ready (app/jobs.py), so the ones that need no build run while
    the others build."""
    batches = job_batches(project, scheduled, seams.environments, seams.environment_events)
    jobs, failures = next(batches, ([], []))
    facts = gather_facts(project, [*jobs, *(job for job, _ in failures)])
    recorder = Recorder(seams.store, facts, scheduled, seams.display)
    publish = publishing_to(project, facts, seams.publisher) if seams.publisher else None
    try:
        while True:
            for job, result in failures:
                recorder.finished(job, result)
            if jobs:
                seams.executor.run(jobs, recorder)
            following = next(batches, None)
            if following is None:
                break
            jobs, failures = following
            recorder.facts = more_facts(recorder.facts, [*jobs, *(job for job, _ in failures)])
        for scored in recorder.score():
            concluded = None
            if scored.complete:
                concluded = conclude(project, scored, facts, seams.store.uri, publish, ledger)
            recorder.finish(scored, concluded.tags if concluded else None)
            report.evaluations.append(_evaluation_report(scored, concluded, recorder))
    except BaseException:
        recorder.abandon("interrupted before the evaluation was scored and recorded")
        raise
    finally:
        batches.close()
        report.units.extend(recorder.units)


def _evaluation_report(
    scored: Scored, concluded: Concluded | None, recorder: Recorder
) -> EvaluationReport:
    units = recorder.units_of(scored.scheduled.name)
    entry = EvaluationReport(
        scored.scheduled.name,
        scored.scheduled.action.action,
        units_run=len(units),
        units_failed=sum(u.status != "succeeded" for u in units),
        score=scored.score,
        run_id=scored.run_id,
    )
    if concluded is not None:
        entry.published = concluded.published
        entry.publish_error = concluded.publish_error
        entry.ledger = concluded.ledger
        entry.ledger_entry = concluded.entry
    return entry
