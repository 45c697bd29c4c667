"""The recorder: what an executor reports (ExecutionEvents) becomes runs in the state store.

Whatever runs the units (a local process, a container, a Kubernetes Job, a server's worker),
the apply process records them here, so identity, records and guarantees do not depend on the
executor. The rules:
- a unit's run is opened (running) when it starts and finished (succeeded/failed, metrics,
  artifacts, result digest, head moved) when it ends — exactly once per unit, whatever events
  an executor repeats; an interrupted apply leaves running or failed runs, never "done" ones;
- an evaluation's run is opened lazily, by its first unit (whose work is already under way, so
  the store's first write overlaps it) or at scoring;
- scoring reads every unit result from the store (reused and new alike), skipping results
  altered in the store since they were recorded (core.records.altered);
- on interrupt, every run not yet finished is abandoned as failed (a unit's too, when its
  executor stopped without reporting its end).

The executor contract: `finished(job, result)` is called once the unit's output files are in
`job.output_dir` on this machine (the adapter's artifacts are read from there).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalhub.core.errors import EvalhubError
from evalhub.core.fingerprint import unit_fingerprint
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.core.records import RunOutcome
from evalhub.core.render_apply import UnitRow
from evalhub.core.runs import (
    RecordedResults,
    RunFacts,
    Scheduled,
    baseline,
    evaluation_outcome,
    evaluation_run,
    recorded_results,
    unit_artifacts,
    unit_outcome,
    unit_run,
)
from evalhub.core.scoring import EvaluationScore, score_evaluation
from evalhub.ports import ExecutionEvents, StateStore

ARTIFACT_LIMIT = 50 << 20  # an adapter's single output file beyond this is not uploaded


UnitReport = UnitRow  # a unit this apply ran, as its report lists it


@dataclass(frozen=True)
class Scored:
    """An evaluation scored from the store; its run is finished by `Recorder.finish`."""

    scheduled: Scheduled
    score: EvaluationScore
    found: RecordedResults
    baseline: float | None  # the last passing aggregate before this score
    run_id: str

    @property
    def complete(self) -> bool:
        """Every unit has a usable result: the result may be published and written down."""
        return not self.found.missing


class Recorder:
    """ExecutionEvents that record into `store`; `display` (if any) sees every event too."""

    def __init__(
        self,
        store: StateStore,
        facts: RunFacts,
        scheduled: Sequence[Scheduled],
        display: ExecutionEvents | None = None,
    ) -> None:
        self.store = store
        self.facts = facts
        self.display = display
        self.units: list[UnitReport] = []
        self._scheduled = {s.name: s for s in scheduled}
        self._evaluation_runs: dict[str, str] = {}
        self._finished_evaluations: set[str] = set()
        self._unit_runs: dict[str, str] = {}  # fingerprint -> run id
        self._done: set[str] = set()  # fingerprints whose run is finished (or being finished)
        self._lock = threading.RLock()  # executors may report from several threads

    # -- ExecutionEvents -----------------------------------------------------------------------

    def started(self, job: JobSpec) -> None:
        with self._lock:
            if job.fingerprint in self._unit_runs:
                return  # reported twice: the unit has its run already
            parent = self._evaluation_run_id(job.evaluation)
            run = unit_run(job, self._scheduled[job.evaluation].evaluation, parent, self.facts)
            self._unit_runs[job.fingerprint] = self.store.start_run(run)
        if self.display:
            self.display.started(job)

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None:
        if self.display:
            self.display.progress(job, update)

    def finished(self, job: JobSpec, result: JobResults) -> None:
        with self._lock:
            if job.fingerprint in self._done:
                return  # recorded once: a repeated end (or a late one after a retry) is dropped
            self._done.add(job.fingerprint)
        self.started(job)  # an executor that reports only the end (or a unit that never ran)
        outputs = read_outputs(job, result)
        self.store.finish_run(
            self._unit_runs[job.fingerprint],
            unit_outcome(
                job,
                result,
                unit_artifacts(job, result, self.facts, outputs),
                self.facts.locks.get(job.environment or "", ()),
            ),
        )
        with self._lock:
            self.units.append(
                UnitReport(
                    job.evaluation,
                    job.spec.key,
                    job.fingerprint,
                    result.status,
                    result.error,
                    result.score,
                )
            )
        if self.display:
            self.display.finished(job, result)

    # -- evaluation runs -----------------------------------------------------------------------

    def score(self) -> list[Scored]:
        """Score every scheduled evaluation from what the store holds now (one bulk read)."""
        fingerprints = {
            unit_fingerprint(u) for s in self._scheduled.values() for u in s.evaluation.units
        }
        state = self.store.read(fingerprints)
        runs, heads = state.unit_runs(), state.evaluation_heads()
        scored = []
        for name, item in self._scheduled.items():
            found = recorded_results(item.evaluation, runs)
            previous = baseline(heads.get(name))
            score = score_evaluation(item.evaluation, found.metrics, previous)
            scored.append(Scored(item, score, found, previous, self._evaluation_run_id(name)))
        return scored

    def finish(self, scored: Scored, tags: Mapping[str, str] | None = None) -> None:
        """Finish the evaluation's run with its score; `tags` adds the publication's."""
        outcome = evaluation_outcome(
            scored.scheduled, scored.score, scored.found, scored.baseline, tags or {}
        )
        self.store.finish_run(scored.run_id, outcome)
        with self._lock:
            self._finished_evaluations.add(scored.scheduled.name)

    def abandon(self, why: str) -> None:
        """Fail every run opened and not finished (the apply is being stopped): units an
        executor started but never reported finished, then the evaluations."""
        with self._lock:
            units = [run for fp, run in self._unit_runs.items() if fp not in self._done]
            self._done.update(self._unit_runs)
            evaluations = [
                run_id
                for name, run_id in self._evaluation_runs.items()
                if name not in self._finished_evaluations
            ]
        for run_id in [*units, *evaluations]:
            # If even this fails, the run stays "running", which the next plan also retries.
            with contextlib.suppress(EvalhubError):
                self.store.finish_run(run_id, RunOutcome(status="failed", error=why))

    def units_of(self, evaluation: str) -> list[UnitReport]:
        with self._lock:
            return [u for u in self.units if u.evaluation == evaluation]

    def _evaluation_run_id(self, name: str) -> str:
        with self._lock:
            if name not in self._evaluation_runs:
                run = evaluation_run(self._scheduled[name], self.facts)
                self._evaluation_runs[name] = self.store.start_run(run)
            return self._evaluation_runs[name]


def read_outputs(job: JobSpec, result: JobResults) -> dict[str, bytes]:
    """The adapter's output files the result names, as artifacts (each up to ARTIFACT_LIMIT)."""
    out = Path(job.output_dir)
    found = {}
    for name, relative in result.artifacts.items():
        path = out / relative
        if path.is_file() and path.stat().st_size <= ARTIFACT_LIMIT:
            found[name] = path.read_bytes()
    return found
