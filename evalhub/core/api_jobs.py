"""From an EvalHub job request to an evalhub Evaluation, and from recorded results back to
EvalHub's job shapes. Pure.

A submitted job becomes an Evaluation *document* — the same plain data a spec file holds — that
is validated with the repository's specs by the same validator (so every reference, secret and
range rule applies, with the same messages) and resolved by the same resolver (so its units
have exactly the fingerprints they would have in git, and share recorded results with them).
Its name is derived from its content, `api-job-<digest>`: resubmitting an identical job names
the same evaluation, which the plan finds recorded — nothing runs, nothing is recorded twice.

What the request may say is limited to choosing: a Model, Providers' benchmarks and Collections
of the repository (by name), entry parameters, weights, thresholds. Models, providers and
their commands come only from the specs in git.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalhub.core.api import (
    BenchmarkInfo,
    BenchmarkRequest,
    BenchmarkResult,
    BenchmarkTest,
    Collection,
    CollectionBenchmark,
    EvaluationTest,
    JobRequest,
    JobResults,
    PassCriteria,
    PrimaryScore,
    Provider,
    Resource,
)
from evalhub.core.canonical import sha256_hex
from evalhub.core.errors import EvalhubError
from evalhub.core.plan import JOB_PREFIX
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.runs import RecordedResults
from evalhub.core.scoring import EvaluationScore
from evalhub.core.spec import API_VERSION
from evalhub.core.specset import SpecSet
from evalhub.core.suggest import suggest

DEFAULT_JOB_THRESHOLD = 0.5  # EvalHub's job pass_criteria default (PassCriteriaWithDefault)


class JobRejected(EvalhubError):
    """The request cannot become an evaluation of this repository (HTTP 400)."""


class NotFound(EvalhubError):
    """No such job, provider or collection (HTTP 404)."""


class Conflict(EvalhubError):
    """The job is in a state that refuses the request (HTTP 409)."""


def job_evaluation(request: JobRequest, specs: SpecSet) -> tuple[str, dict[str, Any] | None]:
    """The evaluation a job runs: (name, None) for an evaluation of the repository, else
    (name, the Evaluation document's data), its name derived from its content."""
    _refuse_what_specs_own(request)
    if request.evaluation is not None:
        if request.evaluation not in specs.evaluations:
            raise JobRejected(
                f"evaluation: no evaluation named {request.evaluation!r} in the specs",
                suggest(request.evaluation, specs.evaluations, "evaluations"),
            )
        return request.evaluation, None
    assert request.model is not None  # JobRequest requires it without an evaluation
    spec: dict[str, Any] = {"model": _model_name(request, specs)}
    threshold: float | None = None
    if request.collection is not None:
        spec["collection"] = _collection_ref(request.collection.id, specs)
        if request.collection.benchmarks:
            raise JobRejected(
                "collection.benchmarks: overriding a collection's benchmarks is not supported",
                "submit the benchmarks themselves under `benchmarks`, or change the collection "
                "in a pull request",
            )
    else:
        benchmarks = request.benchmarks or []
        seen = [b.id for b in benchmarks]
        spec["benchmarks"] = [_entry(b, i, b.id in seen[:i]) for i, b in enumerate(benchmarks)]
        threshold = DEFAULT_JOB_THRESHOLD
    if request.pass_criteria is not None:
        threshold = request.pass_criteria.threshold
    if threshold is not None:
        spec["gates"] = {"min_score": threshold}
    experiment = request.experiment
    if experiment is not None and (experiment.name or experiment.tags):
        spec["experiment"] = {
            **({"name": experiment.name} if experiment.name else {}),
            "tags": {t.key: t.value for t in experiment.tags or []},
        }
    # The name covers what decides the result (not the experiment, a runtime setting).
    name = JOB_PREFIX + sha256_hex({k: v for k, v in spec.items() if k != "experiment"})[:12]
    document = {
        "apiVersion": API_VERSION,
        "kind": "Evaluation",
        "metadata": {"name": name, "labels": {"evalhub.dev/source": "api"}},
        "spec": spec,
    }
    return name, document


def _refuse_what_specs_own(request: JobRequest) -> None:
    if request.exports:
        raise JobRejected(
            "exports: results are published where evalhub.yaml's `registry.target` says",
            "leave `exports` out; the job's result is signed and published there",
        )
    model = request.model
    if model is not None and model.auth is not None and model.auth.secret_ref:
        raise JobRejected(
            "model.auth: a job cannot name a secret",
            "the Model spec names the environment variable holding its key (`api_key_env`)",
        )
    if model is not None and model.parameters:
        raise JobRejected(
            "model.parameters: request settings are part of the Model spec",
            "change the Model's `defaults` in a pull request",
        )
    for i, bench in enumerate(request.benchmarks or []):
        if bench.test_data_ref:
            raise JobRejected(
                f"benchmarks[{i}].test_data_ref: datasets come from the Provider's spec",
                "add the dataset to the provider's catalogue in a pull request",
            )


def _model_name(request: JobRequest, specs: SpecSet) -> str:
    """The Model a job names: by its name, or by the endpoint (url and served name)."""
    assert request.model is not None
    wanted, url = request.model.name, request.model.url
    located = specs.models.get(wanted)
    if located is None:
        matches = [
            name
            for name, m in specs.models.items()
            if m.spec.spec.endpoint is not None
            and m.spec.spec.endpoint.served_name == wanted
            and (url is None or _same_url(m.spec.spec.endpoint.url, url))
        ]
        if len(matches) == 1:
            return matches[0]
        raise JobRejected(
            f"model.name: no Model named {wanted!r} (nor one serving it"
            + (f" at {url}" if url else "")
            + ") in the specs",
            suggest(wanted, specs.models, "models")
            or "models are specs: add a Model document in a pull request",
        )
    endpoint = located.spec.spec.endpoint
    if url is not None and (endpoint is None or not _same_url(endpoint.url, url)):
        raise JobRejected(
            f"model.url: Model {wanted!r} is served at "
            f"{endpoint.url if endpoint else 'no endpoint'}, not {url}",
            "leave `url` out or give the Model's own; endpoints change in a pull request",
        )
    return wanted


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _collection_ref(given: str, specs: SpecSet) -> str:
    name, _, version = given.partition("@")
    versions = specs.collection_versions(name)
    if not versions:
        known = {n for n, _ in specs.collections}
        raise JobRejected(
            f"collection.id: no collection named {name!r} in the specs",
            suggest(name, known, "collections"),
        )
    if not version:
        return f"{name}@{versions[-1]}"
    if not version.isdigit() or int(version) not in versions:
        raise JobRejected(
            f"collection.id: collection {name!r} has no version {version!r}",
            f"versions in the specs: {', '.join(map(str, versions))}",
        )
    return given


def _entry(bench: BenchmarkRequest, index: int, repeated: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": bench.provider_id, "benchmark": bench.id}
    if repeated:
        # Entry names are unique within an evaluation: the same benchmark again (other
        # parameters, say) is named by its request index. Names are not part of unit identity.
        entry["name"] = f"{bench.id}-{index}"
    if bench.weight is not None:
        entry["weight"] = bench.weight
    if bench.parameters:
        entry["params"] = bench.parameters
    if bench.pass_criteria is not None and bench.pass_criteria.threshold is not None:
        entry["threshold"] = bench.pass_criteria.threshold
    if bench.primary_score is not None and bench.primary_score.metric:
        entry["primary_metric"] = bench.primary_score.metric
    return entry


def check_directions(request: JobRequest, evaluation: ResolvedEvaluation) -> None:
    """A request's `lower_is_better` must agree with the catalogue: evalhub scores by it."""
    for i, (bench, unit) in enumerate(
        zip(request.benchmarks or [], evaluation.units, strict=False)
    ):
        score = bench.primary_score
        if score is not None and score.lower_is_better != (unit.direction == "lower"):
            raise JobRejected(
                f"benchmarks[{i}].primary_score.lower_is_better: the catalogue says "
                f"{unit.primary_metric} is {unit.direction}-is-better",
                "leave it out; the metric's direction is part of the Provider spec",
            )


# -- results -------------------------------------------------------------------------------------


def job_results(
    evaluation: ResolvedEvaluation,
    found: RecordedResults,
    score: EvaluationScore,
    fingerprints: Mapping[str, str],
    reused: set[str],
) -> JobResults:
    """EvalHub's results section: per benchmark its metrics, MLflow run, test (normalised
    score against its threshold) and what evalhub adds (weight, fingerprint, reuse); for the
    job the aggregate against the evaluation's thresholds."""
    by_key = {b.key: b for b in score.benchmarks}
    benchmarks = []
    for index, unit in enumerate(evaluation.units):
        bench = by_key.get(unit.key)
        metrics = found.metrics.get(unit.key) or {}
        benchmarks.append(
            BenchmarkResult(
                id=unit.benchmark,
                provider_id=unit.provider.name,
                benchmark_index=index,
                metrics=dict(metrics),
                mlflow_run_id=found.runs.get(unit.key),
                additional_info={
                    "entry": unit.key,
                    "fingerprint": fingerprints[unit.key],
                    "reused": unit.key in reused,
                    "weight": unit.weight,
                    "primary_metric": unit.primary_metric,
                },
                test=None
                if bench is None or bench.score is None
                else BenchmarkTest(
                    primary_score=bench.score, threshold=bench.threshold, passed=bench.passed
                ),
            )
        )
    thresholds = [
        t for t in (evaluation.gates.min_score, evaluation.collection_threshold) if t is not None
    ]
    test = EvaluationTest(
        score=score.aggregate,
        threshold=max(thresholds) if thresholds else None,
        passed=score.verdict == "pass",
    )
    return JobResults(benchmarks=benchmarks, test=test)


# -- providers and collections -------------------------------------------------------------------


def provider_view(name: str, specs: SpecSet) -> Provider:
    located = specs.providers[name]
    spec = located.spec.spec
    return Provider(
        resource=Resource(id=name),
        name=name,
        title=located.spec.metadata.annotations.get("title", name),
        description=located.spec.metadata.annotations.get("description"),
        tags=sorted(located.spec.metadata.labels.values()),
        benchmarks=[
            BenchmarkInfo(
                id=b.id,
                name=b.id,
                description=b.description or None,
                category=spec.adapter,
                metrics=[b.primary_metric],
                primary_score=PrimaryScore(
                    metric=b.primary_metric, lower_is_better=b.direction == "lower"
                ),
            )
            for b in spec.benchmarks
        ],
    )


def collection_view(name: str, version: int, specs: SpecSet) -> Collection:
    located = specs.collections[(name, version)]
    spec = located.spec.spec
    return Collection(
        resource=Resource(id=f"{name}@{version}"),
        name=name,
        category=located.spec.metadata.labels.get("category", "evalhub"),
        description=spec.description or None,
        tags=sorted(located.spec.metadata.labels.values()),
        pass_criteria=None if spec.threshold is None else PassCriteria(threshold=spec.threshold),
        benchmarks=[
            CollectionBenchmark(
                id=b.benchmark,
                provider_id=b.provider,
                weight=b.weight,
                primary_score=None
                if b.primary_metric is None
                else PrimaryScore(metric=b.primary_metric),
                pass_criteria=None if b.threshold is None else PassCriteria(threshold=b.threshold),
                parameters=dict(b.params),
            )
            for b in spec.benchmarks
        ],
    )
