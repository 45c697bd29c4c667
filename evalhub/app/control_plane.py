"""`evalhub serve`'s control plane: EvalHub's jobs, providers and collections over the project.

A submitted job becomes an Evaluation (core/api_jobs.py), validated with the repository's specs
at submission (a bad job is a 400, never a failed job), then queued. One worker applies the
jobs in order through `apply` — the same plan, apply lock, executor, recorder, scoring and
publishing as `evalhub apply`, and its ledger for evaluations of the specs — so a unit already
recorded is reused, never re-run,
and a CLI apply beside the server waits its turn on the lock. The job's results are read back
from the store whatever the plan did (a resubmitted job finds everything recorded: nothing
runs, nothing is recorded twice).

Jobs are files (app/job_store.py, `.evalhub/serve/jobs/`), so they survive a restart: a
job that was running when the server stopped is failed with the reason (its unfinished runs
are failed by the next apply, which retries them); pending ones are queued again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from evalhub import __version__
from evalhub.app import compose
from evalhub.app.apply import ApplyOptions, ApplyReport, apply
from evalhub.app.job_store import JobStore, StoredJob, now
from evalhub.app.jobs import Environments
from evalhub.app.project import Project
from evalhub.app.redaction import apply_redactor
from evalhub.app.specs import Loaded, load_specs
from evalhub.app.state import open_state_store
from evalhub.core.api import (
    TERMINAL,
    BenchmarkStatus,
    Collection,
    Health,
    Job,
    JobRequest,
    JobStatus,
    MessageInfo,
    Provider,
    Resource,
)
from evalhub.core.api_jobs import (
    Conflict,
    NotFound,
    check_directions,
    collection_view,
    job_evaluation,
    job_results,
    provider_view,
)
from evalhub.core.errors import EvalhubError, SpecError
from evalhub.core.fingerprint import unit_fingerprint
from evalhub.core.job import JobResults as UnitResults
from evalhub.core.job import JobSpec, JobStatusUpdate
from evalhub.core.resolve import resolve_evaluation
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.runs import baseline, recorded_results
from evalhub.core.scoring import score_evaluation
from evalhub.core.source import SourceDocument
from evalhub.core.specset import SpecSet
from evalhub.ports import Executor, Publisher, StateStore

INTERRUPTED = (
    "interrupted: the server stopped while the job ran; its unfinished units are retried "
    "by the next submission or apply (recorded ones are reused)"
)


@dataclass(frozen=True)
class Seams:
    """What the worker applies with (None: the project's own, as `evalhub apply` builds them)."""

    store: StateStore | None = None
    executor: Executor | None = None
    environments: Environments | None = None
    publisher: Publisher | None = None


def _message(text: str, code: str = "evaluation_job_updated") -> MessageInfo:
    return MessageInfo(message=text, message_code=code, message_origin="server")


class ControlPlane:
    """The jobs, providers and collections of one project (the HTTP layer's one collaborator)."""

    def __init__(self, project: Project, seams: Seams | None = None, kind: str = "serve") -> None:
        """`kind` names the job store (`.evalhub/<kind>/jobs`): one process owns it at a time
        (a second `evalhub serve` is refused, not allowed to fail the first one's jobs as
        interrupted); `evalhub mcp` has its own."""
        self.project = project
        self.seams = seams or Seams()
        self.jobs = JobStore(project, kind)
        self._lock = threading.RLock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._jobs: dict[str, StoredJob] = {}
        self._worker: threading.Thread | None = None
        self._store: StateStore | None = self.seams.store
        self._recover()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="evalhub-jobs", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker (after its current job, up to `timeout` s) and let go of the jobs."""
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout)
        self.jobs.release()

    def _recover(self) -> None:
        """Jobs from before a restart: running ones failed honestly, pending ones queued."""
        for job in self.jobs.load():
            self._jobs[job.id] = job
            if job.state == "running":
                self._fail(job, INTERRUPTED, "evaluation_job_interrupted")
            elif job.state == "pending":
                self._queue.put(job.id)

    # -- reading the specs -------------------------------------------------------------------------

    def _loaded(self, extra: Iterable[SourceDocument] = ()) -> Loaded:
        loaded = load_specs(self.project, self.project.spec_source(), list(extra))
        if not loaded.validation.ok:
            raise SpecError(loaded.validation.diagnostics)
        return loaded

    def specs(self) -> SpecSet:
        return self._loaded().validation.specs

    def health(self) -> Health:
        return Health(status="healthy", timestamp=now(), version=__version__)

    def providers(self) -> list[Provider]:
        specs = self.specs()
        return [provider_view(name, specs) for name in sorted(specs.providers)]

    def provider(self, provider_id: str) -> Provider:
        specs = self.specs()
        if provider_id not in specs.providers:
            raise NotFound(f"no provider {provider_id!r} in the specs")
        return provider_view(provider_id, specs)

    def collections(self) -> list[Collection]:
        specs = self.specs()
        return [collection_view(n, v, specs) for n, v in sorted(specs.collections)]

    def collection(self, collection_id: str) -> Collection:
        specs = self.specs()
        name, _, version = collection_id.partition("@")
        versions = specs.collection_versions(name)
        if not versions or (version and (not version.isdigit() or int(version) not in versions)):
            raise NotFound(f"no collection {collection_id!r} in the specs")
        return collection_view(name, int(version) if version else versions[-1], specs)

    # -- jobs ------------------------------------------------------------------------------------

    def resolve(self, request: JobRequest) -> ResolvedEvaluation:
        """The job's evaluation, resolved against the specs as they are now (JobRejected or
        SpecError when it cannot be)."""
        specs = self.specs()
        name, document = job_evaluation(request, specs)
        extra = []
        if document is not None:
            root = self.project.spec_source().roots[0]
            extra = [SourceDocument(compose.display(root / f"{name}.yaml"), 0, document)]
        loaded = self._loaded(extra)
        evaluation = resolve_evaluation(loaded.validation.specs, name, loaded.digests)
        if request.benchmarks:
            check_directions(request, evaluation)
        return evaluation

    def submit(self, request: JobRequest) -> Job:
        evaluation = self.resolve(request)
        created = now()
        job = StoredJob(
            id=str(uuid.uuid4()),
            created_at=created,
            updated_at=created,
            request=request,
            evaluation=evaluation.name,
            message=_message("Evaluation job is pending", "evaluation_job_created"),
            benchmarks=[
                BenchmarkStatus(
                    provider_id=u.provider.name, id=u.benchmark, benchmark_index=i, status="pending"
                )
                for i, u in enumerate(evaluation.units)
            ],
        )
        with self._lock:
            self._jobs[job.id] = job
            self._save(job)
        self._log(
            job.id, f"submitted as evaluation {evaluation.name}: {len(evaluation.units)} units"
        )
        with self._lock:
            view = self.view(job)
        self._queue.put(job.id)
        return view

    def get(self, job_id: str) -> Job:
        with self._lock:  # the worker changes a job in several steps, all under the lock
            return self.view(self._job(job_id))

    def list(
        self, limit: int, offset: int, state: str | None = None, name: str | None = None
    ) -> tuple[list[Job], int]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: (j.created_at, j.id), reverse=True)
            jobs = [
                j
                for j in jobs
                if (state is None or j.state == state) and (name is None or j.request.name == name)
            ]
            return [self.view(j) for j in jobs[offset : offset + limit]], len(jobs)

    def cancel(self, job_id: str, hard_delete: bool) -> None:
        with self._lock:
            job = self._job(job_id)
            if job.state == "running":
                raise Conflict(
                    f"job {job_id} is running: its units finish and are recorded once",
                    "wait for it; a running unit is never abandoned half-recorded",
                )
            if hard_delete:
                del self._jobs[job_id]
                self.jobs.delete(job_id)
                return
            if job.state in TERMINAL:
                raise Conflict(f"job {job_id} is {job.state} already")
            job.state = "cancelled"
            job.message = _message("Evaluation job is cancelled", "evaluation_job_cancelled")
            for bench in job.benchmarks:
                bench.status = "cancelled"
            job.updated_at = now()
            self._save(job)
        self._log(job_id, "cancelled before it started")

    def logs(self, job_id: str, tail_lines: int, benchmark_index: int | None = None) -> str:
        job = self._job(job_id)
        if benchmark_index is not None and not 0 <= benchmark_index < len(job.benchmarks):
            raise NotFound(f"job {job_id} has no benchmark {benchmark_index}")
        lines = self.jobs.log_lines(job_id)
        if benchmark_index is not None:
            lines = [line for line in lines if f"[benchmark {benchmark_index}]" in line]
        return "".join(line + "\n" for line in lines[-tail_lines:])

    def view(self, job: StoredJob) -> Job:
        """The job as the API shows it: a copy, made under the lock."""
        request = job.request
        return Job.model_validate(
            self._job_view(job, request).model_dump(mode="json", by_alias=True)
        )

    @staticmethod
    def _job_view(job: StoredJob, request: JobRequest) -> Job:
        return Job(
            resource=Resource(id=job.id, created_at=job.created_at, updated_at=job.updated_at),
            status=JobStatus(state=job.state, message=job.message, benchmarks=job.benchmarks),
            results=job.results,
            name=request.name,
            description=request.description,
            tags=request.tags or [],
            model=request.model,
            benchmarks=request.benchmarks,
            collection=request.collection,
            evaluation=request.evaluation or job.evaluation,
            pass_criteria=request.pass_criteria,
            experiment=request.experiment,
        )

    # -- the worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        # Open the state store before the first job asks for it (MLflow's import and a new
        # store's migrations take seconds); a store that cannot be opened fails each job
        # with the reason instead.
        with contextlib.suppress(EvalhubError):
            self._state_store()
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.state != "pending":
                    continue  # cancelled or deleted while queued
                job.state = "running"
                job.message = _message("Evaluation job is running")
                job.updated_at = now()
                self._save(job)
            self.run(job)

    def run(self, job: StoredJob) -> None:
        """Apply the job's evaluation and record what became of it (never raises)."""
        try:
            evaluation = self.resolve(job.request)  # the specs may have changed since
            report = self._apply(job, evaluation)
            self._conclude(job, evaluation, report)
        except EvalhubError as exc:
            self._fail(job, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        except Exception as exc:  # a bug must not leave the job running for ever
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}")

    def _apply(self, job: StoredJob, evaluation: ResolvedEvaluation) -> ApplyReport:
        events = _JobEvents(self, job, evaluation)
        options = ApplyOptions(
            names=[evaluation.name] if job.request.evaluation else None,
            evaluations=None if job.request.evaluation else [evaluation],
            waiting=lambda: self._log(job.id, "waiting for the apply lock (another apply runs)"),
            display=events,
        )
        return apply(
            self.project,
            options,
            self._state_store(),
            self.seams.executor,
            self.seams.environments,
            self.seams.publisher,
        )

    def _state_store(self) -> StateStore:
        if self._store is None:
            self._store = open_state_store(self.project)
        return self._store

    def _conclude(
        self, job: StoredJob, evaluation: ResolvedEvaluation, report: ApplyReport
    ) -> None:
        store = self._state_store()
        fingerprints = {u.key: unit_fingerprint(u) for u in evaluation.units}
        state = store.read(set(fingerprints.values()))
        found = recorded_results(evaluation, state.unit_runs())
        head = state.evaluation_heads().get(evaluation.name)
        score = score_evaluation(evaluation, found.metrics, baseline(head))
        action = next((a for a in report.plan.actions if a.evaluation == evaluation.name), None)
        ran = {w.key for w in action.units} if action else set()
        errors = {u.key: u.error for u in report.units if u.evaluation == evaluation.name}
        reused = set(fingerprints) - ran
        done = now()
        with self._lock:
            for index, unit in enumerate(evaluation.units):
                bench = job.benchmarks[index]
                if unit.key in found.missing:
                    bench.status = "failed"
                    why = errors.get(unit.key) or "no usable result was recorded"
                    bench.error_message = _message(self._redact(why, evaluation), "unit_failed")
                else:
                    bench.status, bench.phase = "completed", "completed"
                bench.completed_at = bench.completed_at or done
            job.results = job_results(evaluation, found, score, fingerprints, reused)
            failed = len(found.missing)
            if failed == 0:
                job.state = "completed"
            elif failed == len(evaluation.units):
                job.state = "failed"
            else:
                job.state = "partially_failed"
            verdict = f"verdict {score.verdict}" + (
                f": {'; '.join(score.reasons)}" if score.reasons else ""
            )
            job.message = _message(
                f"Evaluation job is {job.state}: {len(ran)} units run, {len(reused)} reused; "
                + verdict
            )
            job.updated_at = done
            self._save(job)
        published = [e.published for e in report.evaluations if e.published]
        self._log(
            job.id,
            f"{job.state}: {len(ran)} run, {len(reused)} reused, aggregate "
            f"{score.aggregate}, {verdict}" + (f"; published {published[0]}" if published else ""),
        )

    def _fail(self, job: StoredJob, why: str, code: str = "evaluation_job_failed") -> None:
        with self._lock:
            job.state = "failed"
            job.message = _message(why, code)
            for bench in job.benchmarks:
                if bench.status in ("pending", "running"):
                    bench.status = "failed"
                    bench.error_message = _message(why, code)
            job.updated_at = now()
            self._save(job)
        self._log(job.id, f"failed: {why}")

    def _redact(self, text: str, evaluation: ResolvedEvaluation) -> str:
        return apply_redactor(self.project.config, [evaluation], os.environ).text(text)

    # -- files -----------------------------------------------------------------------------------

    def _job(self, job_id: str) -> StoredJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no evaluation job {job_id!r}")
        return job

    def _save(self, job: StoredJob) -> None:
        self.jobs.save(job)

    def _log(self, job_id: str, line: str) -> None:
        with self._lock:
            self.jobs.log(job_id, line)


class _JobEvents:
    """ExecutionEvents that move the job's benchmark statuses and write its log."""

    def __init__(self, plane: ControlPlane, job: StoredJob, evaluation: ResolvedEvaluation):
        self.plane, self.job, self.evaluation = plane, job, evaluation
        self.index = {u.key: i for i, u in enumerate(evaluation.units)}

    def _update(self, job_spec: JobSpec, change: Callable[[BenchmarkStatus], None]) -> int | None:
        index = self.index.get(job_spec.spec.key)
        if index is None or job_spec.evaluation != self.evaluation.name:
            return None
        with self.plane._lock:
            change(self.job.benchmarks[index])
            self.job.updated_at = now()
            self.plane._save(self.job)
        return index

    def started(self, job: JobSpec) -> None:
        def change(bench: BenchmarkStatus) -> None:
            bench.status, bench.phase, bench.started_at = "running", "initializing", now()

        index = self._update(job, change)
        self.plane._log(
            self.job.id, f"[benchmark {index}] {job.unit} started ({job.fingerprint[:12]})"
        )

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None:
        phase = {"running": "running_evaluation", "post_processing": "post_processing"}.get(
            update.phase
        )
        if phase is not None:

            def change(bench: BenchmarkStatus) -> None:
                bench.phase = phase  # type: ignore[assignment]

            self._update(job, change)

    def finished(self, job: JobSpec, result: UnitResults) -> None:
        index = self.index.get(job.spec.key)
        error = f": {self.plane._redact(result.error, self.evaluation)}" if result.error else ""
        self.plane._log(self.job.id, f"[benchmark {index}] {job.unit} {result.status}{error}")
