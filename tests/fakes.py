"""In-memory stand-ins for evalhub's ports, for fast in-process tests of apply and recording.

Each fake keeps the contract of its port (evalhub/ports.py) faithfully, so a test that passes
against it says something about the real thing:
- MemoryStateStore: runs with tags, params, metrics and artifacts; `running` until finished;
  one head per (kind, name) moved at finish; `read` answers like the MLflow readers (heads,
  plus every run of the fingerprints whose head has not succeeded).
- ScriptedExecutor: returns the results a test scripts per unit key, reports started /
  progress / finished like the local executor, and can be interrupted at a given unit.
- NoEnvironments: providers need no managed environment (or a scripted one fails to build).
- FakePublisher: results by digest and tag, signed by the real Signer it is handed; can be
  down (an unreachable registry) or forget everything (a deleted layout).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.core import attestation, records
from evalhub.core.errors import EvalhubError, PublishError, StateError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate, failed_result
from evalhub.core.publication import Copied, Published
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.result import EvaluationResult, json_bytes
from evalhub.core.scoring import normalise
from evalhub.core.state import RecordedRun, RunKind, RunStatus, State
from evalhub.ports import ExecutionEvents, Publisher, Signer

# -- the state store ---------------------------------------------------------------------------


@dataclass
class StoredRun:
    """A run as the store holds it (what MLflow would show)."""

    run_id: str
    kind: RunKind
    name: str
    experiment: str
    started: int
    parent_run_id: str | None
    tags: dict[str, str]
    status: RunStatus = "running"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)


class MemoryStateStore:
    """evalhub.ports.StateStore in memory."""

    def __init__(self, uri: str = "memory://evalhub-test") -> None:
        self.uri = uri
        self.identity = uri
        self.runs: dict[str, StoredRun] = {}
        self.reads = 0
        self._clock = itertools.count(1_700_000_000_000)  # ms, strictly increasing
        self._ids = itertools.count(1)

    # -- the port ------------------------------------------------------------------------------

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State:
        return self.read(work())

    def index_runs(self, progress: Callable[[int, int], None] | None = None) -> int:
        return 0  # every run here is found in bulk

    def read(self, fingerprints: Collection[str]) -> State:
        self.reads += 1
        recorded = [r for r in map(self._recorded, self.runs.values()) if r is not None]
        heads = [r for r in recorded if r.head]
        settled = {r.fingerprint for r in heads if r.kind == "unit" and r.status == "succeeded"}
        wanted = set(fingerprints) - settled
        by_fingerprint = [r for r in recorded if r.kind == "unit" and r.fingerprint in wanted]
        return State(
            heads=tuple(sorted(heads, key=lambda r: (r.kind, r.name, r.started, r.run_id))),
            by_fingerprint=tuple(
                sorted(by_fingerprint, key=lambda r: (r.fingerprint, r.started, r.run_id))
            ),
        )

    def start_run(self, run: NewRun) -> str:
        run_id = f"run-{next(self._ids):04d}"
        if run.parent_run_id is not None and run.parent_run_id not in self.runs:
            raise StateError(f"parent run {run.parent_run_id} does not exist")
        self.runs[run_id] = StoredRun(
            run_id=run_id,
            kind=run.kind,
            name=run.name,
            experiment=run.experiment,
            started=next(self._clock),
            parent_run_id=run.parent_run_id,
            tags=dict(run.all_tags()),
        )
        return run_id

    def finish_run(self, run_id: str, outcome: RunOutcome) -> None:
        if outcome.status not in ("succeeded", "failed"):
            raise ValueError(f"a finished run succeeded or failed, not {outcome.status!r}")
        run = self.runs[run_id]
        if run.status != "running":
            raise StateError(f"run {run_id} finished twice (it is {run.status})")
        run.metrics.update(outcome.metrics)
        run.params.update(outcome.params)
        run.artifacts.update(outcome.artifacts)
        run.tags.update(outcome.tags)
        run.tags[records.STATUS] = outcome.status
        if outcome.error:
            run.tags[records.ERROR] = " ".join(outcome.error.split())
        run.status = outcome.status
        for other in self.runs.values():  # the new head, then the old ones cleared
            if (other.kind, other.name) == (run.kind, run.name):
                other.tags[records.HEAD] = "true" if other is run else "false"

    def fail_interrupted_runs(self) -> list[str]:
        left = [r for r in self.runs.values() if r.status == "running"]
        for run in left:  # as MlflowStateStore: MLflow status KILLED reads as failed
            run.status = "failed"
            run.tags[records.STATUS] = "failed"
            run.tags[records.ERROR] = "interrupted: the apply that ran it stopped"
        return [r.run_id for r in left]

    # -- what tests look at and do ----------------------------------------------------------------

    def of_kind(self, kind: RunKind, name: str | None = None) -> list[StoredRun]:
        """Runs of `kind` (and `name`), oldest first."""
        return [
            r
            for r in sorted(self.runs.values(), key=lambda r: r.started)
            if r.kind == kind and (name is None or r.name == name)
        ]

    def head(self, kind: RunKind, name: str) -> StoredRun:
        (found,) = [r for r in self.of_kind(kind, name) if r.tags.get(records.HEAD) == "true"]
        return found

    def _recorded(self, run: StoredRun) -> RecordedRun | None:
        tags = {k: v for k, v in run.tags.items() if k.startswith(records.TAG_PREFIX)}
        identity = tags.get(records.IDENTITY)
        return RecordedRun(
            run_id=run.run_id,
            kind=run.kind,
            name=run.name,
            evaluation=tags[records.EVALUATION],
            fingerprint=tags[records.FINGERPRINT],
            fingerprint_version=int(tags[records.FINGERPRINT_VERSION]),
            status=run.status,
            started=run.started,
            head=tags.get(records.HEAD) == "true",
            identity=json.loads(identity) if identity else None,
            metrics=dict(run.metrics),
            tags=tags,
        )


# -- the executor ------------------------------------------------------------------------------

Scripted = Mapping[str, float] | Callable[[JobSpec], JobResults]


def succeeded(job: JobSpec, metrics: Mapping[str, float], samples: int = 3) -> JobResults:
    """A unit's result as run-unit reports it: the metrics, and the primary one normalised."""
    unit = job.spec
    value = metrics.get(unit.primary_metric)
    return JobResults(
        fingerprint=job.fingerprint,
        status="succeeded",
        metrics=dict(metrics),
        primary_metric=unit.primary_metric,
        primary_value=value,
        score=None if value is None else normalise(value, unit.scale, unit.direction),
        samples=samples,
        duration_seconds=0.25,
        framework=unit.provider.adapter,
        framework_version="1.0-test",
    )


def failing(error: str) -> Callable[[JobSpec], JobResults]:
    return lambda job: failed_result(job, error)


class ScriptedExecutor:
    """evalhub.ports.Executor that runs nothing: each unit's result is scripted by unit key
    (`<evaluation>/<entry>`, or `*/<entry>` for any evaluation) as its metrics or a function
    of the job. A unit the script lacks
    fails the test. `interrupt_at` (a unit key): that unit starts, then Ctrl-C — it is
    reported failed as interrupted and KeyboardInterrupt is raised, as the local executor
    does (with `report_interrupted=False` its end is never reported: an executor that died).
    `repeat_events` reports every event twice (an executor that retries delivery)."""

    def __init__(
        self,
        script: Mapping[str, Scripted] | None = None,
        interrupt_at: str | None = None,
        repeat_events: bool = False,
        report_interrupted: bool = True,
    ) -> None:
        self.script = dict(script or {})
        self.interrupt_at = interrupt_at
        self.repeat_events = repeat_events
        self.report_interrupted = report_interrupted
        self.ran: list[str] = []  # unit keys, in the order they ran

    def _key(self, job: JobSpec) -> str:
        """The script's key of a unit: `<evaluation>/<entry>`, else `*/<entry>` (any
        evaluation: one made from a job submitted to `evalhub serve`, say)."""
        return job.unit if job.unit in self.script else f"*/{job.spec.key}"

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        results: dict[str, JobResults] = {}
        times = 2 if self.repeat_events else 1
        for job in jobs:
            key = self._key(job)
            assert key in self.script or self.interrupt_at in (job.unit, key), (
                f"the executor was asked to run {job.unit}, which the test did not expect"
            )
            self.ran.append(job.unit)
            for _ in range(times):
                events.started(job)
            if self.interrupt_at in (job.unit, key):
                if self.report_interrupted:
                    events.finished(job, failed_result(job, "interrupted (the apply was stopped)"))
                raise KeyboardInterrupt
            events.progress(job, JobStatusUpdate(phase="running", completed=1, total=2))
            scripted = self.script[key]
            result = scripted(job) if callable(scripted) else succeeded(job, scripted)
            for _ in range(times):
                events.finished(job, result)
            results[job.fingerprint] = result
        return results


# -- provider environments ---------------------------------------------------------------------


class NoEnvironments:
    """Providers' managed environments: none needed; requirements listed in `broken` fail."""

    def __init__(self, broken: Collection[str] = ()) -> None:
        self.broken = set(broken)

    def ensure(
        self,
        requirements: list[str],
        log: Path | None = None,
        step: Callable[[str], None] | None = None,
        lock: Sequence[str] = (),
    ) -> Path | None:
        bad = sorted(self.broken.intersection(requirements))
        if bad:
            raise EvalhubError(f"cannot install {', '.join(bad)}")
        return None


# --- publishing fakes (oci) ---


class FakePublisher:
    """evalhub.ports.Publisher in memory: results by digest (sha256 of the result record, so
    another result is another digest) and tags, each signed by the Signer it was handed.
    `down` makes every call fail as an unreachable registry does; `forget` loses results
    as a deleted layout does."""

    def __init__(self, target: str = "oci-layout:memory", down: bool = False) -> None:
        self.target = target
        self.down = down
        self.held: dict[str, EvaluationResult] = {}
        self.envelopes: dict[str, bytes] = {}  # result digest -> its signed statement
        self.tags: dict[str, str] = {}
        self.published: list[str] = []  # the evaluations published, in order
        self.asked: list[set[str]] = []  # the digests each `missing` call was asked about

    def publish(
        self, result: EvaluationResult, environment: Mapping[str, Any], signer: Signer
    ) -> Published:
        self._reachable()
        digest = _digest(json_bytes(result.record().model_dump(mode="json")))
        statement = attestation.statement(result.record(), digest)
        envelope = signer.sign(attestation.statement_bytes(statement), attestation.PAYLOAD_TYPE)
        self.held[digest], self.envelopes[digest] = result, envelope
        self.tags[result.tag] = digest
        self.published.append(result.evaluation)
        return Published(
            f"{self.target}:{result.tag}", digest, _digest(envelope), signer.key.key_id
        )

    def missing(self, digests: Collection[str]) -> set[str]:
        self._reachable()
        self.asked.append(set(digests))
        return set(digests) - set(self.held)

    def result_tags(self) -> list[str]:
        self._reachable()
        return sorted(self.tags)

    def copy_to(self, destination: Publisher, tag: str) -> Copied:
        self._reachable()
        if not isinstance(destination, FakePublisher):
            raise PublishError(f"cannot copy from {self.target} to {destination.target}")
        digest = self.tags[tag]
        destination.held[digest] = self.held[digest]
        destination.envelopes[digest] = self.envelopes[digest]
        destination.tags[tag] = digest
        return Copied(tag, digest, (_digest(self.envelopes[digest]),))

    def forget(self) -> None:
        self.held.clear()
        self.envelopes.clear()
        self.tags.clear()

    def _reachable(self) -> None:
        if self.down:
            raise PublishError(
                f"cannot reach {self.target}: no answer within 1 s",
                "check that the registry is running",
            )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
