"""The runs evalhub records, built from plain values: a unit's and an evaluation's run (tags at
start) and outcome (metrics, params, artifacts, tags at the end). Pure: every fact about the
machine, the commit or the endpoints comes in as a RunFacts gathered once before execution.

The recorder (app/record.py) only decides when to write these; what is written is decided here.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalhub.core import records
from evalhub.core.canonical import canonical_json, sha256_hex
from evalhub.core.fingerprint import (
    FINGERPRINT_VERSION,
    evaluation_identity,
    unit_fingerprint,
    unit_identity,
)
from evalhub.core.job import JobResults, JobSpec
from evalhub.core.plan import EvaluationAction
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.resolved import ResolvedEvaluation, ResolvedModel
from evalhub.core.scoring import EvaluationScore
from evalhub.core.state import RecordedRun


@dataclass(frozen=True)
class RunFacts:
    """What is true of this whole apply, gathered once before any unit runs (so recording
    never waits on git, the machine or an endpoint, and every unit records the same facts)."""

    evalhub_version: str
    commit: str | None = None  # the spec repository's HEAD
    source: str | None = None  # the spec repository's remote
    machine: Mapping[str, Any] = field(default_factory=dict)  # python, OS, CPU, GPUs
    endpoints: Mapping[str, Any] = field(default_factory=dict)  # endpoint url -> its /models
    packages: Mapping[str, Sequence[str]] = field(default_factory=dict)  # environment -> freeze
    locks: Mapping[str, Sequence[str]] = field(default_factory=dict)  # environment -> its lock
    user: str | None = None  # who runs the apply (MLflow's mlflow.user)


@dataclass(frozen=True)
class Scheduled:
    """An evaluation this apply runs, rescores or publishes, with the plan's action for it."""

    evaluation: ResolvedEvaluation
    action: EvaluationAction

    @property
    def name(self) -> str:
        return self.evaluation.name


@dataclass(frozen=True)
class RecordedResults:
    """What the store holds of an evaluation's units, as scoring uses it."""

    metrics: dict[str, Mapping[str, float] | None]  # entry key -> metrics (None: no result)
    runs: dict[str, str | None]  # entry key -> the run whose result is used
    missing: list[str]  # entry keys without a usable result
    altered: dict[str, str]  # entry key -> a run whose result was altered in the store

    def problem(self) -> str | None:
        """Why the evaluation cannot be scored from the store (None: it can)."""
        if not self.missing:
            return None
        text = "units without a result: " + ", ".join(self.missing)
        if self.altered:
            text += "; recorded results altered in the store since they were recorded: " + (
                ", ".join(f"{key} (run {run})" for key, run in sorted(self.altered.items()))
            )
        return text


def experiment(evaluation: ResolvedEvaluation) -> str:
    return evaluation.experiment.name or f"evalhub/{evaluation.name}"


def provenance(evaluation: ResolvedEvaluation, facts: RunFacts) -> dict[str, str]:
    """Tags every run of `evaluation` carries: the user's experiment tags, then evalhub's."""
    tags = dict(evaluation.experiment.tags)
    tags[records.VERSION] = facts.evalhub_version
    tags[records.MODEL] = evaluation.model.name
    if evaluation.collection:
        tags[records.COLLECTION] = evaluation.collection
    if facts.commit:
        tags[records.GIT_COMMIT] = facts.commit
        tags[records.MLFLOW_GIT_COMMIT] = facts.commit
    if facts.source:
        tags[records.MLFLOW_GIT_REPO] = facts.source
    tags[records.MLFLOW_SOURCE_NAME] = evaluation.source
    tags[records.MLFLOW_SOURCE_TYPE] = "PROJECT"
    if facts.user:
        tags[records.MLFLOW_USER] = facts.user
    return tags


def dataset_inputs(job: JobSpec) -> tuple[records.DatasetRef, ...]:
    """The unit's dataset (and any other data file it names) as MLflow run inputs."""
    unit = job.spec
    # `files` are relative to the spec root; MLflow shows them relative to the repository.
    spec_root = posixpath.relpath(job.spec_root, job.project_root)
    if spec_root.startswith(".."):
        spec_root = "."
    refs = []
    for path, digest in sorted(unit.files.items()):
        if path != unit.dataset and not path.endswith((".jsonl", ".json", ".csv", ".parquet")):
            continue  # code and task definitions are not datasets
        name = unit.benchmark if path == unit.dataset else posixpath.basename(path)
        hex_digest = digest.removeprefix("sha256:")
        uri = posixpath.normpath(posixpath.join(spec_root, path))
        source = json.dumps({"uri": uri, "sha256": hex_digest}, sort_keys=True)
        refs.append(records.DatasetRef(name, hex_digest[:16], source))
    return tuple(refs)


def evaluation_run(scheduled: Scheduled, facts: RunFacts) -> NewRun:
    evaluation, action = scheduled.evaluation, scheduled.action
    assert action.fingerprint is not None  # runnable actions come from specs
    return NewRun(
        kind="evaluation",
        name=evaluation.name,
        evaluation=evaluation.name,
        fingerprint=action.fingerprint,
        fingerprint_version=FINGERPRINT_VERSION,
        identity=evaluation_identity(evaluation),
        experiment=experiment(evaluation),
        tags={**provenance(evaluation, facts), records.ACTION: action.action},
    )


def unit_run(
    job: JobSpec, evaluation: ResolvedEvaluation, parent_run_id: str, facts: RunFacts
) -> NewRun:
    unit = job.spec
    return NewRun(
        kind="unit",
        name=job.unit,
        evaluation=job.evaluation,
        fingerprint=job.fingerprint,
        fingerprint_version=FINGERPRINT_VERSION,
        identity=unit_identity(unit),
        experiment=experiment(evaluation),
        parent_run_id=parent_run_id,
        tags={
            **provenance(evaluation, facts),
            records.PROVIDER: unit.provider.name,
            records.BENCHMARK: unit.benchmark,
        },
        inputs=dataset_inputs(job),
    )


def unit_metrics(result: JobResults) -> dict[str, float]:
    """The metrics recorded for a unit: the framework's, then score, samples and duration."""
    keys = {name: records.metric_key(name) for name in result.metrics}
    metrics = {
        keys[name]: v for name, v in result.metrics.items() if records.recordable(keys[name])
    }
    if result.score is not None:
        metrics["score"] = result.score
    metrics["samples"] = float(result.samples)
    metrics["duration_seconds"] = result.duration_seconds
    return metrics


def unit_outcome(
    job: JobSpec,
    result: JobResults,
    artifacts: Mapping[str, bytes],
    environment_lock: Sequence[str] = (),
) -> RunOutcome:
    """A finished unit's outcome, with the digest of its result as recorded and of the lock of
    the environment it ran in (if any)."""
    metrics = unit_metrics(result)
    extra = (
        {records.ENVIRONMENT_LOCK: sha256_hex(sorted(environment_lock))} if environment_lock else {}
    )
    return RunOutcome(
        status=result.status,
        metrics=metrics,
        params=flatten(job.spec.model_dump(mode="json", exclude={"key"})),
        artifacts=artifacts,
        error=result.error,
        tags={
            records.FRAMEWORK_VERSION: result.framework_version or "",
            records.RESULT_DIGEST: records.result_digest(result.status, metrics),
            **extra,
        },
    )


def unit_artifacts(
    job: JobSpec, result: JobResults, facts: RunFacts, outputs: Mapping[str, bytes]
) -> dict[str, bytes]:
    """What a unit run keeps: its job and result, the environment and endpoint it ran against,
    and the adapter's own output files (`outputs`: artifact name -> content)."""
    environment = {
        **facts.machine,
        "framework": result.framework,
        "framework_version": result.framework_version,
        "environment_packages": list(facts.packages.get(job.environment or "", ())),
        "environment_lock": list(facts.locks.get(job.environment or "", ())),
    }
    artifacts = {
        "unit.json": job.model_dump_json(indent=2).encode(),
        "result.json": result.model_dump_json(indent=2).encode(),
        "environment.json": json.dumps(environment, indent=2).encode(),
        "endpoint.json": json.dumps(endpoint_facts(job.spec.model, facts), indent=2).encode(),
    }
    artifacts.update({f"output/{name}": data for name, data in outputs.items()})
    return artifacts


def endpoint_facts(model: ResolvedModel, facts: RunFacts) -> Any:
    if model.endpoint is None:
        return {"local": model.local.model_dump() if model.local else None}
    return facts.endpoints.get(model.endpoint.url)


def recorded_results(
    evaluation: ResolvedEvaluation, runs: Mapping[str, list[RecordedRun]]
) -> RecordedResults:
    """Each unit's usable result among the recorded runs (fingerprint -> runs, newest first)."""
    found = RecordedResults({}, {}, [], {})
    for unit in evaluation.units:
        candidates = runs.get(unit_fingerprint(unit), [])
        chosen = records.usable(candidates)
        found.metrics[unit.key] = chosen.metrics if chosen else None
        found.runs[unit.key] = chosen.run_id if chosen else None
        if chosen is None:
            found.missing.append(unit.key)
            tampered = next((r for r in candidates if records.altered(r)), None)
            if tampered is not None:
                found.altered[unit.key] = tampered.run_id
    return found


def baseline(head: RecordedRun | None) -> float | None:
    """The aggregate of the last passing result, as the evaluation's head carries it."""
    if head is None or records.BASELINE not in head.tags:
        return None
    try:
        return float(head.tags[records.BASELINE])
    except ValueError:
        return None


def evaluation_outcome(
    scheduled: Scheduled,
    score: EvaluationScore,
    found: RecordedResults,
    previous_baseline: float | None,
    tags: Mapping[str, str],
) -> RunOutcome:
    """The scored evaluation's outcome; `tags` adds the publication's (when published)."""
    evaluation = scheduled.evaluation
    problem = found.problem()
    passed = score.aggregate if score.verdict == "pass" else previous_baseline
    metrics = {f"score.{b.key}": b.score for b in score.benchmarks if b.score is not None}
    if score.aggregate is not None:
        metrics["aggregate"] = score.aggregate
    summary = {
        "evaluation": evaluation.name,
        "fingerprint": scheduled.action.fingerprint,
        "verdict": score.verdict,
        "aggregate": score.aggregate,
        "reasons": list(score.reasons),
        "benchmarks": [b.__dict__ for b in score.benchmarks],
        "units": found.runs,
    }
    final: dict[str, str] = {records.VERDICT: score.verdict}
    # The unit runs scored, new or reused (a rescore's or a publish's units were recorded by
    # an earlier apply, so they are not its children): as tags, and in the run's description.
    used = {key: run for key, run in sorted(found.runs.items()) if run}
    final.update({records.UNIT_RUN_PREFIX + key: run for key, run in used.items()})
    final[records.MLFLOW_NOTE] = unit_runs_note(scheduled.action.action, used, found.missing)
    if passed is not None:
        final[records.BASELINE] = repr(passed)
    final.update(tags)
    return RunOutcome(
        status="failed" if problem else "succeeded",
        metrics={k: v for k, v in metrics.items() if v is not None},
        params={"collection": evaluation.collection or "", "model": evaluation.model.name},
        artifacts={
            "evaluation.json": evaluation.model_dump_json(indent=2).encode(),
            "result.json": json.dumps(summary, indent=2).encode(),
        },
        error=problem,
        tags=final,
    )


def unit_runs_note(action: str, used: Mapping[str, str], missing: Sequence[str]) -> str:
    """Markdown for the MLflow UI: which unit runs this evaluation run scored."""
    lines = [f"**evalhub {action}**: scored from these unit runs (search `run_id`):", ""]
    lines += [f"- `{key}`: run `{run}`" for key, run in used.items()]
    lines += [f"- `{key}`: no result" for key in missing]
    return "\n".join(lines)


def publication_tags(
    *, reference: str, digest: str, attestation_digest: str, key_id: str
) -> dict[str, str]:
    """The tags of a published evaluation run (the plan reads PUBLISHED_DIGEST)."""
    return {
        records.OCI_REFERENCE: reference,
        records.PUBLISHED_DIGEST: digest,
        records.ATTESTATION_DIGEST: attestation_digest,
        records.SIGNER: key_id,
    }


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
