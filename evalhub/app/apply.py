"""`evalhub apply`: run what the plan says, record it in MLflow, score it.

Order of events, chosen so that nothing is lost or recorded twice:
1. under the store's apply lock, plan (or recompute a saved plan and refuse it when stale);
2. open one evaluation run per evaluation to create/run/retry/rescore (status running);
3. run each distinct unit once; its MLflow run is opened (running) before the unit starts and
   finished (succeeded/failed, metrics, artifacts, head moved) when it ends — so an interrupted
   apply leaves running or failed runs, which the next plan retries, never "done" ones;
4. score every evaluation from the recorded results (reused and new) and finish its run;
5. write each complete result's ledger file (`<ledger.dir>/<evaluation>.json`) and, with
   `commit`, commit exactly the changed ledger files (refused up front when the specs have
   uncommitted changes, so the ledger always describes committed specs).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalhub import __version__
from evalhub.adapters.environments import EnvironmentStore, packages
from evalhub.adapters.executors.local import LocalExecutor
from evalhub.adapters.git import head_commit, remote_url
from evalhub.adapters.machine import machine_facts
from evalhub.adapters.openai_client import fetch_models
from evalhub.app.keys import has_signing_key
from evalhub.app.ledger import (
    CommitOptions,
    LedgerCommit,
    check_can_commit,
    commit_entries,
    write_entry,
)
from evalhub.app.locks import apply_lock
from evalhub.app.plan import ProjectPlan, current_plan_for, load_saved_plan, make_project_plan
from evalhub.app.project import Project
from evalhub.app.publish import check_publish_settings, publish_result
from evalhub.app.state import open_state_store
from evalhub.core import records
from evalhub.core.canonical import canonical_json
from evalhub.core.errors import ConfigError, EvalhubError, PublishError
from evalhub.core.fingerprint import (
    FINGERPRINT_VERSION,
    evaluation_identity,
    unit_fingerprint,
    unit_identity,
)
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate, failed_result
from evalhub.core.ledger import LedgerEntry, ledger_entry
from evalhub.core.plan import PUBLISHED_DIGEST, Plan, UnitWork
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.resolved import ResolvedEvaluation, ResolvedModel, ResolvedUnit
from evalhub.core.result import EvaluationResult
from evalhub.core.scoring import EvaluationScore, score_evaluation
from evalhub.core.state import RecordedRun
from evalhub.ports import ExecutionEvents, Executor, StateStore

RUNNABLE = ("create", "run", "retry", "rescore", "publish")
BASELINE = "evalhub.baseline"  # aggregate of the last passing result, carried on every run
VERDICT = "evalhub.verdict"
ARTIFACT_LIMIT = 50 << 20  # an adapter's single output file beyond this is not uploaded


class Aborted(EvalhubError):
    """The user declined the plan."""


@dataclass
class UnitReport:
    evaluation: str
    key: str
    fingerprint: str
    status: str
    error: str | None
    score: float | None


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


@dataclass
class ApplyOptions:
    plan_file: Path | None = None
    names: list[str] | None = None
    concurrency: int | None = None
    confirm: Callable[[Plan], bool] = lambda plan: True
    waiting: Callable[[], None] = lambda: None
    display: ExecutionEvents | None = None  # progress shown to the user
    publish: bool = True  # sign and publish results (when a signing key is at hand)
    ledger: CommitOptions = field(default_factory=CommitOptions)  # commit the ledger files


def apply(
    project: Project,
    options: ApplyOptions,
    store: StateStore | None = None,
    executor: Executor | None = None,
    environments: EnvironmentStore | None = None,
) -> ApplyReport:
    check_can_commit(project, options.ledger)  # before anything runs
    store = store or open_state_store(project)
    publishing = options.publish and has_signing_key(project)
    if publishing:
        check_publish_settings(project)  # a wrong registry setting fails before any work
    with apply_lock(project, store.identity, options.waiting):
        store.fail_interrupted_runs()  # left running by a killed apply: none is live now
        if options.plan_file is not None:
            saved = load_saved_plan(options.plan_file)
            current = current_plan_for(project, saved, store, publishing)
        else:
            current = make_project_plan(project, options.names, store, publishing)
        report = ApplyReport(current.plan)
        if not any(a.action in RUNNABLE for a in current.plan.actions):
            return report
        if not options.confirm(current.plan):
            raise Aborted("apply cancelled; nothing was run")
        _check_executors(current)
        concurrency = options.concurrency or project.config.executors.concurrency
        run = _Apply(project, current, store, report, options.display, publishing)
        run.execute(
            executor or LocalExecutor(concurrency),
            environments or EnvironmentStore(environment_root(project)),
        )
        if options.ledger.commit:
            written = [
                (e.ledger, e.ledger_entry)
                for e in report.evaluations
                if e.ledger is not None and e.ledger_entry is not None
            ]
            report.ledger_commit = commit_entries(project, written, options.ledger)
        return report


def environment_root(project: Project) -> Path | None:
    """Where the managed environments live (None: the default, ~/.cache/evalhub/envs)."""
    configured = project.config.executors.environments_dir
    return project.root / configured if configured else None


def _check_executors(current: ProjectPlan) -> None:
    runnable = {a.evaluation for a in current.plan.actions if a.action in RUNNABLE}
    for evaluation in current.evaluations:
        if evaluation.name in runnable and evaluation.execution.executor != "local":
            raise ConfigError(
                f"evaluation {evaluation.name!r} asks for the {evaluation.execution.executor} "
                "executor, which this evalhub does not provide yet",
                "use `execution: {executor: local}` for now",
            )


class _Apply:
    def __init__(
        self,
        project: Project,
        current: ProjectPlan,
        store: StateStore,
        report: ApplyReport,
        display: ExecutionEvents | None,
        publishing: bool,
    ) -> None:
        self.project = project
        self.publishing = publishing
        self.store = store
        self.report = report
        self.display = display
        self.actions = {a.evaluation: a for a in current.plan.actions if a.action in RUNNABLE}
        self.evaluations = {e.name: e for e in current.evaluations if e.name in self.actions}
        self.commit = head_commit(project.root)
        self.machine = machine_facts()
        self.evaluation_runs: dict[str, str] = {}
        self.unit_runs: dict[str, str] = {}  # fingerprint -> run id
        self.units: dict[str, ResolvedUnit] = {}
        self.endpoints: dict[str, Any] = {}
        self.stamp = time.strftime("%Y%m%dT%H%M%S")

    # -- the run ------------------------------------------------------------------------------

    def execute(self, executor: Executor, environments: EnvironmentStore) -> None:
        # Evaluation runs are opened lazily, by their first unit (whose process is already
        # running by then, so opening the store overlaps real work) or at scoring.
        for name in self.evaluations:
            self.report.evaluations.append(EvaluationReport(name, self.actions[name].action))
        try:
            jobs, failures = self._jobs(environments)
            for job, result in failures:
                self.started(job)
                self.finished(job, result)
            if jobs:
                executor.run(jobs, self)
        except BaseException:
            self._abandon_evaluations("interrupted before scoring")
            raise
        self._score()

    def _jobs(
        self, environments: EnvironmentStore
    ) -> tuple[list[JobSpec], list[tuple[JobSpec, JobResults]]]:
        jobs: list[JobSpec] = []
        failures: list[tuple[JobSpec, JobResults]] = []
        built: dict[tuple[str, ...], Path | str | None] = {}
        for name, action in self.actions.items():
            evaluation = self.evaluations[name]
            for work in action.units:
                if work.status == "shared":
                    continue
                unit = next(u for u in evaluation.units if u.key == work.key)
                self.units[work.fingerprint] = unit
                requirements = unit.provider.requirements
                if requirements not in built:
                    log = self.project.state_dir / "logs" / "environments.log"
                    try:
                        built[requirements] = environments.ensure(list(requirements), log)
                    except EvalhubError as exc:
                        built[requirements] = exc.message
                env = built[requirements]
                job = self._job(evaluation, unit, work, env if isinstance(env, Path) else None)
                if isinstance(env, str):
                    failures.append((job, failed_result(job, f"provider environment: {env}")))
                else:
                    jobs.append(job)
        return jobs, failures

    def _job(
        self, evaluation: ResolvedEvaluation, unit: ResolvedUnit, work: UnitWork, env: Path | None
    ) -> JobSpec:
        workdir = self.project.state_dir / "runs" / f"{self.stamp}-{work.fingerprint[:16]}"
        source = self.project.root / evaluation.source
        roots = self.project.spec_source().roots
        spec_root = next(
            (r for r in roots if r.resolve() in source.resolve().parents), self.project.root
        )
        timeout = (
            evaluation.execution.timeout_seconds or self.project.config.executors.timeout_seconds
        )
        return JobSpec(
            evaluation=evaluation.name,
            unit=work.unit,
            fingerprint=work.fingerprint,
            spec=unit,
            spec_root=str(spec_root.resolve()),
            project_root=str(self.project.root.resolve()),
            output_dir=str((workdir / "output").resolve()),
            environment=str(env) if env else None,
            timeout_seconds=timeout,
            concurrency=evaluation.execution.concurrency or 4,
        )

    # -- ExecutionEvents: recording ------------------------------------------------------------

    def started(self, job: JobSpec) -> None:
        unit = job.spec
        run = NewRun(
            kind="unit",
            name=job.unit,
            evaluation=job.evaluation,
            fingerprint=job.fingerprint,
            fingerprint_version=FINGERPRINT_VERSION,
            identity=unit_identity(unit),
            experiment=self._experiment(self.evaluations[job.evaluation]),
            parent_run_id=self._evaluation_run_id(job.evaluation),
            tags={
                **self._provenance(self.evaluations[job.evaluation]),
                "evalhub.provider": unit.provider.name,
                "evalhub.benchmark": unit.benchmark,
            },
        )
        self.unit_runs[job.fingerprint] = self.store.start_run(run)
        if self.display:
            self.display.started(job)

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None:
        if self.display:
            self.display.progress(job, update)

    def finished(self, job: JobSpec, result: JobResults) -> None:
        metrics = {records.metric_key(name): value for name, value in result.metrics.items()}
        if result.score is not None:
            metrics["score"] = result.score
        metrics["samples"] = float(result.samples)
        metrics["duration_seconds"] = result.duration_seconds
        artifacts = self._unit_artifacts(job, result)
        outcome = RunOutcome(
            status=result.status,
            metrics=metrics,
            params=flatten(job.spec.model_dump(mode="json", exclude={"key"})),
            artifacts=artifacts,
            error=result.error,
            tags={"evalhub.framework_version": result.framework_version or ""},
        )
        self.store.finish_run(self.unit_runs[job.fingerprint], outcome)
        self.report.units.append(
            UnitReport(
                job.evaluation,
                job.spec.key,
                job.fingerprint,
                result.status,
                result.error,
                result.score,
            )
        )
        for entry in self.report.evaluations:
            if entry.name == job.evaluation:
                entry.units_run += 1
                entry.units_failed += result.status != "succeeded"
        if self.display:
            self.display.finished(job, result)

    def _unit_artifacts(self, job: JobSpec, result: JobResults) -> dict[str, bytes]:
        environment = {
            **self.machine,
            "framework": result.framework,
            "framework_version": result.framework_version,
            "environment_packages": packages(Path(job.environment) if job.environment else None),
        }
        artifacts = {
            "unit.json": job.model_dump_json(indent=2).encode(),
            "result.json": result.model_dump_json(indent=2).encode(),
            "environment.json": json.dumps(environment, indent=2).encode(),
            "endpoint.json": json.dumps(self._endpoint(job.spec.model), indent=2).encode(),
        }
        out = Path(job.output_dir)
        for name, relative in result.artifacts.items():
            path = out / relative
            if path.is_file() and path.stat().st_size <= ARTIFACT_LIMIT:
                artifacts[f"output/{name}"] = path.read_bytes()
        return artifacts

    def _endpoint(self, model: ResolvedModel) -> Any:
        endpoint = model.endpoint
        if endpoint is None:
            return {"local": model.local.model_dump() if model.local else None}
        if endpoint.url not in self.endpoints:
            key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
            self.endpoints[endpoint.url] = fetch_models(endpoint, key)
        return self.endpoints[endpoint.url]

    # -- scoring ------------------------------------------------------------------------------

    def _score(self) -> None:
        fingerprints = {unit_fingerprint(u) for e in self.evaluations.values() for u in e.units}
        state = self.store.read(fingerprints)
        runs = state.unit_runs()
        heads = state.evaluation_heads()
        for entry in self.report.evaluations:
            evaluation = self.evaluations[entry.name]
            results, missing = _recorded_results(evaluation, runs)
            head = heads.get(entry.name)
            baseline = _baseline(head)
            score = score_evaluation(evaluation, results, baseline)
            entry.score = score
            entry.run_id = self._evaluation_run_id(entry.name)
            passed_baseline = score.aggregate if score.verdict == "pass" else baseline
            metrics = {f"score.{b.key}": b.score for b in score.benchmarks if b.score is not None}
            if score.aggregate is not None:
                metrics["aggregate"] = score.aggregate
            unit_runs = {u.key: _run_of(runs, unit_fingerprint(u)) for u in evaluation.units}
            summary = {
                "evaluation": entry.name,
                "fingerprint": self.actions[entry.name].fingerprint,
                "verdict": score.verdict,
                "aggregate": score.aggregate,
                "reasons": list(score.reasons),
                "benchmarks": [b.__dict__ for b in score.benchmarks],
                "units": unit_runs,
            }
            tags: dict[str, str] = {VERDICT: score.verdict}
            if passed_baseline is not None:
                tags[BASELINE] = repr(passed_baseline)
            if not missing:
                tags.update(self._record(entry, evaluation, score, unit_runs))
            self.store.finish_run(
                self.evaluation_runs[entry.name],
                RunOutcome(
                    status="failed" if missing else "succeeded",
                    metrics={k: v for k, v in metrics.items() if v is not None},
                    params={
                        "collection": evaluation.collection or "",
                        "model": evaluation.model.name,
                    },
                    artifacts={
                        "evaluation.json": evaluation.model_dump_json(indent=2).encode(),
                        "result.json": json.dumps(summary, indent=2).encode(),
                    },
                    error=("units without a result: " + ", ".join(missing)) if missing else None,
                    tags=tags,
                ),
            )

    def _record(
        self,
        entry: EvaluationReport,
        evaluation: ResolvedEvaluation,
        score: EvaluationScore,
        unit_runs: Mapping[str, str | None],
    ) -> dict[str, str]:
        """Publish a complete result (when signing) and write its ledger file; returns the
        evaluation run's publication tags."""
        result = EvaluationResult.build(
            evaluation,
            score,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            evalhub_version=__version__,
            spec_commit=self.commit,
            source=remote_url(self.project.root),
            tracking_uri=self.store.uri,
            run_id=entry.run_id,
            unit_runs=unit_runs,
        )
        tags: dict[str, str] = {}
        files = [self._spec_file(evaluation.source)]
        ledger = ledger_entry(result, spec_files=files)
        if self.publishing:
            tags = self._publish(entry, result)
            if entry.published is not None:
                ledger = ledger_entry(
                    result,
                    spec_files=files,
                    published=entry.published,
                    attestation_digest=tags["evalhub.attestation.digest"],
                    signer_key_id=tags["evalhub.signer"],
                )
        entry.ledger = write_entry(self.project, ledger)
        entry.ledger_entry = ledger
        return tags

    def _spec_file(self, source: str) -> str:
        """A spec file as the ledger names it: relative to the project root, posix."""
        path = Path(os.path.abspath(source))
        try:
            return path.relative_to(self.project.root).as_posix()
        except ValueError:
            return source

    def _publish(self, entry: EvaluationReport, result: EvaluationResult) -> dict[str, str]:
        """Sign and publish the result; a failure leaves it recorded and pending."""
        try:
            published = publish_result(self.project, result, self.machine)
        except PublishError as exc:
            entry.publish_error = exc.message
            return {}
        entry.published = published.pinned
        return {
            "evalhub.oci.reference": published.reference,
            PUBLISHED_DIGEST: published.digest,
            "evalhub.attestation.digest": published.attestation_digest,
            "evalhub.signer": published.key_id,
        }

    def _abandon_evaluations(self, why: str) -> None:
        for run_id in self.evaluation_runs.values():
            # If even this fails, the run stays "running", which the next plan also retries.
            with contextlib.suppress(EvalhubError):
                self.store.finish_run(run_id, RunOutcome(status="failed", error=why))

    # -- tags ---------------------------------------------------------------------------------

    def _evaluation_run_id(self, name: str) -> str:
        if name not in self.evaluation_runs:
            run = self._evaluation_run(self.evaluations[name])
            self.evaluation_runs[name] = self.store.start_run(run)
        return self.evaluation_runs[name]

    def _evaluation_run(self, evaluation: ResolvedEvaluation) -> NewRun:
        action = self.actions[evaluation.name]
        assert action.fingerprint is not None
        return NewRun(
            kind="evaluation",
            name=evaluation.name,
            evaluation=evaluation.name,
            fingerprint=action.fingerprint,
            fingerprint_version=FINGERPRINT_VERSION,
            identity=evaluation_identity(evaluation),
            experiment=self._experiment(evaluation),
            tags={**self._provenance(evaluation), "evalhub.action": action.action},
        )

    def _experiment(self, evaluation: ResolvedEvaluation) -> str:
        return evaluation.experiment.name or f"evalhub/{evaluation.name}"

    def _provenance(self, evaluation: ResolvedEvaluation) -> dict[str, str]:
        tags = dict(evaluation.experiment.tags)
        tags[records.VERSION] = __version__
        tags[records.MODEL] = evaluation.model.name
        if evaluation.collection:
            tags[records.COLLECTION] = evaluation.collection
        if self.commit:
            tags[records.GIT_COMMIT] = self.commit
        return tags


def _recorded_results(
    evaluation: ResolvedEvaluation, runs: Mapping[str, list[RecordedRun]]
) -> tuple[dict[str, Mapping[str, float] | None], list[str]]:
    results: dict[str, Mapping[str, float] | None] = {}
    missing = []
    for unit in evaluation.units:
        done = [r for r in runs.get(unit_fingerprint(unit), []) if r.status == "succeeded"]
        results[unit.key] = done[0].metrics if done else None
        if not done:
            missing.append(unit.key)
    return results, missing


def _run_of(runs: Mapping[str, list[RecordedRun]], fingerprint: str) -> str | None:
    done = [r for r in runs.get(fingerprint, []) if r.status == "succeeded"]
    return done[0].run_id if done else None


def _baseline(head: RecordedRun | None) -> float | None:
    if head is None or BASELINE not in head.tags:
        return None
    try:
        return float(head.tags[BASELINE])
    except ValueError:
        return None


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested spec -> {"model.revision": "v1", …} for MLflow params (bounded by the store)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
    elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        out[prefix.rstrip(".")] = canonical_json(value)
    elif value is not None and value != [] and value != {}:
        out[prefix.rstrip(".")] = value if isinstance(value, str) else canonical_json(value)
    return out
