"""A generated spec repository and an MLflow SQLite store holding a year of CI against it.

The store holds the runs evalhub's own writer (MlflowStateStore.finish_run) would have left:
for every current unit a head run, plus older runs of the same unit names (earlier provider
versions, some failed), plus evaluation runs. Fingerprints and identities are the real ones,
computed by evalhub from the resolved specs. The state it describes, per evaluation:
  - most are unchanged since their last apply (plan: noop);
  - `changed` of them had their params edited since (plan: run, "params.limit: 10 → 20");
  - in the rest, `failed` of the units failed last time (plan: retry) and `interrupted` of the
    units have a run that never finished after a success of an older version (plan: retry).

Writing 100,000 runs through MLflow's API takes hours (~0.2 s a run here), so `write_bulk`
inserts the rows into MLflow's tables with sqlite3 executemany, after MLflow created the schema.
`write_api` writes the same runs through MlflowStateStore;
tests/adapters/test_store_fixture.py checks that both writers leave what the adapter reads
identically, so the bulk writer cannot drift.

Built stores are cached under bench/.cache/<key>/ (key: the parameters, FINGERPRINT_VERSION,
the MLflow version and GENERATOR_VERSION), built in a temporary directory and moved into place.
Run `python bench/store_fixture.py [EVALUATIONS]` to build one and print where it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from evalhub.adapters.files import file_lock
from evalhub.adapters.mlflow import boundary, values
from evalhub.adapters.mlflow_store import FINAL_STATUS, PARENT_RUN, MlflowStateStore
from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core import records
from evalhub.core.canonical import canonical_json, sha256_hex
from evalhub.core.fingerprint import (
    FINGERPRINT_VERSION,
    evaluation_identity,
    unit_fingerprint,
    unit_identity,
)
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.resolved import ResolvedEvaluation, ResolvedUnit

GENERATOR_VERSION = 3  # bump when what is generated changes, to invalidate cached stores
CACHE = Path(__file__).resolve().parent / ".cache"
YEAR_START_MS = 1_764_115_200_000  # 2025-11-26T00:00:00Z
DAY_MS = 86_400_000
PROVIDERS = 5
BENCHMARKS = 5  # per provider
COLLECTIONS = 10  # 4 benchmarks each; each evaluation adds one inline: 5 units


@dataclass(frozen=True)
class Params:
    evaluations: int = 1000
    unit_runs: int = 100_000  # unit runs in the store, heads included
    evaluation_history: int = 2  # superseded evaluation runs per evaluation
    changed: float = 0.05  # evaluations edited since their last apply
    failed: float = 0.01  # units whose last attempt failed
    interrupted: float = 0.005  # units with a run that never finished
    historical_failures: float = 0.1  # of the superseded unit runs
    seed: int = 7

    def key(self) -> str:
        parts = {
            **asdict(self),
            "fingerprint_version": FINGERPRINT_VERSION,
            "mlflow": version("mlflow-skinny"),
            "generator": GENERATOR_VERSION,
        }
        return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LoggedRun:
    """One run as evalhub records it: started, then (unless interrupted) finished."""

    run: NewRun
    outcome: RunOutcome | None  # None: started and never finished
    start: int  # ms since the epoch
    end: int


@dataclass(frozen=True)
class Fixture:
    root: Path
    params: Params
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"


# -- the spec repository -------------------------------------------------------------------------

MODEL = """apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: model-{i}}}
spec:
  endpoint: {{url: "http://127.0.0.1:8000/v1", api: chat, served_name: m{i}}}
  revision: v{i}
  defaults: {{temperature: 0, max_tokens: 64}}
"""
PROVIDER_HEAD = """apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: provider-{p}}}
spec:
  adapter: builtin
  version: "1.0.0"
  benchmarks:
"""
BENCHMARK = """    - id: bench-{b}
      primary_metric: {metric}
      dataset: ../data/provider-{p}-bench-{b}.jsonl
      params: {{scorer: {metric}}}
"""
COLLECTION = """apiVersion: evalhub.dev/v1
kind: Collection
metadata: {{name: collection-{c}}}
spec:
  version: 1
  benchmarks:
    - {{provider: provider-{p}, benchmark: bench-0, weight: 2, threshold: 0.5}}
    - {{provider: provider-{p}, benchmark: bench-1}}
    - {{provider: provider-{p}, benchmark: bench-2, params: {{limit: 10}}}}
    - {{provider: provider-{q}, benchmark: bench-3}}
  threshold: 0.6
"""
EVALUATION = """apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: evaluation-{i:05d}}}
spec:
  model: model-{m}
  collection: collection-{c}@1
  benchmarks:
    - {{provider: provider-{p}, benchmark: bench-4, name: extra, weight: 0.5}}
  params: {{limit: 20, seed: {i}}}
  experiment: {{tags: {{owner: bench}}}}
  gates: {{min_score: 0.5, max_regression: 0.05}}
"""
METRICS = ("exact_match", "contains", "f1")


def generate_repo(repo: Path, params: Params, tracking_uri: str | None) -> None:
    specs = repo / "evals"
    for directory in ("data", "models", "providers", "collections", "evaluations"):
        (specs / directory).mkdir(parents=True)
    models = max(1, params.evaluations // 50)
    for i in range(models):
        (specs / "models" / f"model-{i}.yaml").write_text(MODEL.format(i=i))
    for p in range(PROVIDERS):
        text = PROVIDER_HEAD.format(p=p)
        for b in range(BENCHMARKS):
            text += BENCHMARK.format(p=p, b=b, metric=METRICS[b % len(METRICS)])
            rows = [{"question": f"q{p}-{b}-{r}", "expected": f"a{r}"} for r in range(20)]
            data = "".join(json.dumps(row) + "\n" for row in rows)
            (specs / "data" / f"provider-{p}-bench-{b}.jsonl").write_text(data)
        (specs / "providers" / f"provider-{p}.yaml").write_text(text)
    for c in range(COLLECTIONS):
        text = COLLECTION.format(c=c, p=c % PROVIDERS, q=(c + 1) % PROVIDERS)
        (specs / "collections" / f"collection-{c}.yaml").write_text(text)
    for i in range(params.evaluations):
        text = EVALUATION.format(i=i, m=i % models, c=i % COLLECTIONS, p=(i + 2) % PROVIDERS)
        (specs / "evaluations" / f"evaluation-{i:05d}.yaml").write_text(text)
    settings = "specs: [evals]\n"
    if tracking_uri:
        settings += f"tracking_uri: {json.dumps(tracking_uri)}\n"
    (repo / "evalhub.yaml").write_text(settings)


def resolve_repo(repo: Path) -> list[ResolvedEvaluation]:
    project = load_project(repo)
    return resolved_evaluations(project, project.spec_source())


# -- a year of runs --------------------------------------------------------------------------------


def experiment_of(evaluation: ResolvedEvaluation) -> str:
    return evaluation.experiment.name or f"evalhub/{evaluation.name}"


def _variant(identity: dict[str, Any], **changes: Any) -> tuple[dict[str, Any], str]:
    """An identity as it was before some change, and its fingerprint."""
    changed = json.loads(json.dumps(identity))
    for dotted, value in changes.items():
        node = changed
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return changed, sha256_hex(changed)


def _pick(rng: random.Random, population: int, fraction: float) -> set[int]:
    count = min(population, math.ceil(population * fraction)) if fraction > 0 else 0
    return set(rng.sample(range(population), count))


def history(evaluations: Sequence[ResolvedEvaluation], params: Params) -> list[LoggedRun]:
    """Every run of the year, oldest first (deterministic for given params)."""
    rng = random.Random(params.seed)
    units = [(e, u) for e in evaluations for u in e.units]
    changed = _pick(rng, len(evaluations), params.changed)
    changed_names = {evaluations[i].name for i in changed}
    steady = [i for i, (e, _) in enumerate(units) if e.name not in changed_names]
    rng.shuffle(steady)
    failed = set(steady[: math.ceil(len(units) * params.failed)])
    interrupted_count = math.ceil(len(units) * params.interrupted)
    interrupted = set(steady[len(failed) : len(failed) + interrupted_count])
    superseded = max(0, params.unit_runs - len(units) - len(interrupted))
    per_unit, extra = divmod(superseded, max(1, len(units)))
    commit = hashlib.sha1(str(params.seed).encode()).hexdigest()

    runs: list[LoggedRun] = []
    head_fps: dict[str, dict[str, str]] = {}
    last_unit_time: dict[str, int] = {}
    for index, (evaluation, unit) in enumerate(units):
        identity = unit_identity(unit)
        older = per_unit + (1 if index < extra else 0)
        times = sorted(rng.randrange(0, 330 * DAY_MS) for _ in range(older))
        for k, offset in enumerate(times):
            old, fp = _variant(identity, provider__version=f"0.{k}.0")
            status = "failed" if rng.random() < params.historical_failures else "succeeded"
            runs.append(_unit_run(evaluation, unit, old, fp, status, offset, rng, commit))
        head_time = rng.randrange(330 * DAY_MS, 360 * DAY_MS)
        if evaluation.name in changed_names:
            head_identity, head_fp = _variant(identity, params__limit=10)
        elif index in interrupted:
            head_identity, head_fp = _variant(identity, provider__version="0.99.0")
        else:
            head_identity, head_fp = identity, unit_fingerprint(unit)
        status = "failed" if index in failed else "succeeded"
        runs.append(
            _unit_run(evaluation, unit, head_identity, head_fp, status, head_time, rng, commit)
        )
        if index in interrupted:
            started = head_time + DAY_MS
            runs.append(
                _unit_run(
                    evaluation, unit, identity, unit_fingerprint(unit), None, started, rng, commit
                )
            )
        head_fps.setdefault(evaluation.name, {})[unit.key] = head_fp
        last_unit_time[evaluation.name] = max(last_unit_time.get(evaluation.name, 0), head_time)

    for evaluation in evaluations:
        current = evaluation_identity(evaluation)
        for k in range(params.evaluation_history):
            old, fp = _variant(current, scoring__gates__min_score=round(0.1 + 0.05 * k, 2))
            offset = rng.randrange(0, 330 * DAY_MS)
            runs.append(_evaluation_run(evaluation, old, fp, offset, rng, commit))
        head = {**current, "units": head_fps[evaluation.name]}
        runs.append(
            _evaluation_run(
                evaluation,
                head,
                sha256_hex(head),
                last_unit_time[evaluation.name] + 60_000,
                rng,
                commit,
            )
        )
    runs.sort(key=lambda r: r.start)
    return runs


def _tags(evaluation: ResolvedEvaluation, commit: str) -> dict[str, str]:
    return {
        records.MODEL: evaluation.model.name,
        records.COLLECTION: evaluation.collection or "",
        records.GIT_COMMIT: commit,
        records.VERSION: "0.1.0",
        **evaluation.experiment.tags,
    }


def _unit_run(
    evaluation: ResolvedEvaluation,
    unit: ResolvedUnit,
    identity: dict[str, Any],
    fingerprint: str,
    status: str | None,
    offset: int,
    rng: random.Random,
    commit: str,
) -> LoggedRun:
    run = NewRun(
        kind="unit",
        name=f"{evaluation.name}/{unit.key}",
        evaluation=evaluation.name,
        fingerprint=fingerprint,
        fingerprint_version=FINGERPRINT_VERSION,
        identity=identity,
        experiment=experiment_of(evaluation),
        tags={
            **_tags(evaluation, commit),
            "evalhub.provider": unit.provider.name,
            "evalhub.benchmark": unit.benchmark,
        },
    )
    outcome = None
    framework = {"evalhub.framework_version": "0.1.0"}
    if status == "succeeded":
        value = round(rng.random(), 4)
        outcome = RunOutcome(
            status="succeeded",
            metrics={
                unit.primary_metric: value,
                "score": value,
                "samples": 20.0,
                "duration_seconds": round(rng.uniform(5, 600), 2),
            },
            params={
                "benchmark": unit.benchmark,
                "provider": unit.provider.name,
                "model": unit.model.name,
                **{f"param.{k}": json.dumps(v) for k, v in sorted(unit.params.items())},
            },
            tags=framework,
        )
    elif status == "failed":
        outcome = RunOutcome(
            status="failed", error="model server returned 503 three times", tags=framework
        )
    start = YEAR_START_MS + offset
    return LoggedRun(run, outcome, start, start + rng.randrange(5_000, 600_000))


def _evaluation_run(
    evaluation: ResolvedEvaluation,
    identity: dict[str, Any],
    fingerprint: str,
    offset: int,
    rng: random.Random,
    commit: str,
) -> LoggedRun:
    run = NewRun(
        kind="evaluation",
        name=evaluation.name,
        evaluation=evaluation.name,
        fingerprint=fingerprint,
        fingerprint_version=FINGERPRINT_VERSION,
        identity=identity,
        experiment=experiment_of(evaluation),
        tags={**_tags(evaluation, commit), "evalhub.action": "run"},
    )
    score = round(rng.random(), 4)
    outcome = RunOutcome(
        status="succeeded",
        metrics={"aggregate": score, **{f"score.{u.key}": score for u in evaluation.units}},
        params={"collection": evaluation.collection or "", "model": evaluation.model.name},
        tags={"evalhub.verdict": "pass" if score >= 0.5 else "fail"},
    )
    start = YEAR_START_MS + offset
    return LoggedRun(run, outcome, start, start + 1_000)


# -- writers ---------------------------------------------------------------------------------------


def create_schema(db: Path) -> None:
    """An empty MLflow store, created by MLflow itself (its migrations take seconds)."""
    boundary.import_mlflow()
    from mlflow import MlflowClient

    db.parent.mkdir(parents=True, exist_ok=True)
    with boundary.quiet():
        MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()


def write_api(store: MlflowStateStore, runs: Sequence[LoggedRun]) -> list[str]:
    """Through the real adapter, in order. Returns the run ids."""
    ids = []
    for logged in runs:
        run_id = store.start_run(logged.run)
        if logged.outcome is not None:
            store.finish_run(run_id, logged.outcome)
        ids.append(run_id)
    return ids


def heads(runs: Sequence[LoggedRun]) -> set[int]:
    """Indexes of the runs that are heads: the last finished run of each kind and name."""
    last: dict[tuple[str, str], int] = {}
    for index, logged in enumerate(runs):
        if logged.outcome is not None:
            last[(logged.run.kind, logged.run.name)] = index
    return set(last.values())


def write_bulk(db: Path, artifact_root: Path, runs: Sequence[LoggedRun], seed: int) -> list[str]:
    """The rows MlflowStateStore would leave for `runs`, inserted directly into MLflow's
    tables (created beforehand by create_schema). Returns the run ids."""
    rng = random.Random(seed)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in runs]
    head = heads(runs)
    with _connection(db) as conn:
        experiments = _experiments(conn, artifact_root, runs)
        rows: dict[str, list[tuple[Any, ...]]] = {
            "runs": [],
            "tags": [],
            "params": [],
            "metrics": [],
            "latest_metrics": [],
            "datasets": [],
            "inputs": [],
            "input_tags": [],
        }
        datasets: dict[tuple[int, str], str] = {}  # (experiment id, digest) -> dataset uuid
        for index, (run_id, logged) in enumerate(zip(ids, runs, strict=True)):
            _rows(rows, run_id, logged, index in head, experiments)
            if logged.run.kind == "unit":
                _unit_input_rows(rows, run_id, logged, experiments, datasets, rng)
        for table, batch in rows.items():
            columns = COLUMNS[table]
            marks = ", ".join("?" for _ in columns)
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
    return ids


COLUMNS = {
    "runs": (
        "run_uuid",
        "name",
        "source_type",
        "source_name",
        "entry_point_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
    ),
    "tags": ("key", "value", "run_uuid"),
    "params": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "run_uuid", "step", "is_nan"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
    "datasets": (
        "dataset_uuid",
        "experiment_id",
        "name",
        "digest",
        "dataset_source_type",
        "dataset_source",
    ),
    "inputs": ("input_uuid", "source_type", "source_id", "destination_type", "destination_id"),
    "input_tags": ("input_uuid", "name", "value"),
}


@contextmanager
def _connection(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a scratch file until it is moved into place
        with conn:
            yield conn
    finally:
        conn.close()


def _experiments(
    conn: sqlite3.Connection, artifact_root: Path, runs: Sequence[LoggedRun]
) -> dict[str, tuple[int, str]]:
    """Create every experiment the runs name (as create_experiment would): name -> id, location."""
    found = dict(conn.execute("SELECT name, experiment_id FROM experiments"))
    next_id = max([0, *found.values()]) + 1
    out: dict[str, tuple[int, str]] = {}
    created = []
    first: dict[str, int] = {}
    for logged in runs:
        name = logged.run.experiment
        first[name] = min(first.get(name, logged.start), logged.start)
    for name, start in first.items():
        location = values.store_location(name)  # a SQLite store's, as the adapter makes it
        if name in found:
            out[name] = (found[name], location)
            continue
        created.append((next_id, name, location, "active", start - 1, start - 1, "default"))
        out[name] = (next_id, location)
        next_id += 1
    conn.executemany(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
        "creation_time, last_update_time, workspace) VALUES (?, ?, ?, ?, ?, ?, ?)",
        created,
    )
    return out


def _rows(
    rows: dict[str, list[tuple[Any, ...]]],
    run_id: str,
    logged: LoggedRun,
    is_head: bool,
    experiments: dict[str, tuple[int, str]],
) -> None:
    run, outcome = logged.run, logged.outcome
    experiment_id, location = experiments[run.experiment]
    name = values.run_name(run)
    status = "RUNNING" if outcome is None else FINAL_STATUS[outcome.status]
    rows["runs"].append(
        (
            run_id,
            name,
            "UNKNOWN",
            "",
            "",
            "unknown",
            status,
            logged.start,
            None if outcome is None else logged.end,
            "",
            "active",
            f"{location}/{run_id}/artifacts",
            experiment_id,
        )
    )
    tags = values.tags(run.all_tags())
    if run.parent_run_id:
        tags[PARENT_RUN] = run.parent_run_id
    if run.kind == "unit":
        tags[records.LOOKUP] = records.LOOKUP_UNIT_INPUT
    tags["mlflow.runName"] = name
    if outcome is not None:
        final = {**outcome.tags, records.STATUS: outcome.status}
        if outcome.error:
            final[records.ERROR] = values.one_line(outcome.error)
        tags.update(values.tags(final))
        tags[records.HEAD] = "true" if is_head else "false"
        for key, value in values.params(outcome.params).items():
            rows["params"].append((key, value, run_id))
        stamp = logged.end - 1
        for key, metric in values.metrics(outcome.metrics).items():
            nan = math.isnan(metric)
            stored = 0.0 if nan else float(metric)
            rows["metrics"].append((key, stored, stamp, run_id, 0, int(nan)))
            rows["latest_metrics"].append((key, stored, stamp, 0, int(nan), run_id))
    rows["tags"].extend((key, value, run_id) for key, value in tags.items())


def _unit_input_rows(
    rows: dict[str, list[tuple[Any, ...]]],
    run_id: str,
    logged: LoggedRun,
    experiments: dict[str, tuple[int, str]],
    datasets: dict[tuple[int, str], str],
    rng: random.Random,
) -> None:
    """The unit input MlflowStateStore.start_run logs: one dataset per experiment and
    fingerprint, one input per run, tagged with its context."""
    experiment_id = experiments[logged.run.experiment][0]
    name, digest, source = values.unit_input(logged.run.fingerprint)
    dataset = datasets.get((experiment_id, digest))
    if dataset is None:
        dataset = datasets[(experiment_id, digest)] = uuid.UUID(int=rng.getrandbits(128)).hex
        rows["datasets"].append((dataset, experiment_id, name, digest, values.UNIT_SOURCE, source))
    input_id = uuid.UUID(int=rng.getrandbits(128)).hex
    rows["inputs"].append((input_id, "DATASET", dataset, "RUN", run_id))
    rows["input_tags"].append((input_id, "mlflow.data.context", "unit"))


# -- the cache ------------------------------------------------------------------------------------


def build(params: Params, cache: Path = CACHE, log: Any = None) -> Fixture:
    """The fixture for `params`, from the cache or built now (concurrency-safe)."""
    final = cache / params.key()
    if (final / "fixture.json").is_file():
        return _load(final, params)
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / ".lock"):
        if (final / "fixture.json").is_file():
            return _load(final, params)
        work = Path(tempfile.mkdtemp(prefix=f"{final.name}.", dir=cache))
        try:
            counts = _build_into(work, final, params, log)
            (work / "fixture.json").write_text(
                json.dumps({"params": asdict(params), "counts": counts}, indent=2) + "\n"
            )
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return _load(final, params)


def _build_into(work: Path, final: Path, params: Params, log: Any) -> dict[str, int]:
    """Build in `work`, with every path already pointing where it will live: `final`."""
    say = log or (lambda _: None)
    started = time.perf_counter()
    fixture = Fixture(final, params)
    generate_repo(work / "repo", params, fixture.uri)
    evaluations = resolve_repo(work / "repo")
    say(f"  specs: {len(evaluations)} evaluations ({time.perf_counter() - started:.1f} s)")
    runs = history(evaluations, params)
    say(f"  history: {len(runs)} runs ({time.perf_counter() - started:.1f} s)")
    template = _template(final.parent)
    shutil.copy(template, work / "mlflow.db")
    write_bulk(work / "mlflow.db", fixture.artifacts, runs, params.seed)
    say(f"  store written ({time.perf_counter() - started:.1f} s)")
    (work / "artifacts").mkdir()
    unit_runs = sum(1 for r in runs if r.run.kind == "unit")
    return {
        "evaluations": len(evaluations),
        "units": sum(len(e.units) for e in evaluations),
        "unit_runs": unit_runs,
        "evaluation_runs": len(runs) - unit_runs,
        "running": sum(1 for r in runs if r.outcome is None),
        "failed": sum(1 for r in runs if r.outcome is not None and r.outcome.status == "failed"),
    }


def _template(cache: Path) -> Path:
    """An empty store MLflow created, one per MLflow version (called under the cache lock)."""
    template = cache / f"empty-mlflow-{version('mlflow-skinny')}.db"
    if not template.is_file():
        scratch = cache / f".{template.name}.{os.getpid()}"
        scratch.unlink(missing_ok=True)
        create_schema(scratch)
        os.replace(scratch, template)
    return template


def _load(root: Path, params: Params) -> Fixture:
    meta = json.loads((root / "fixture.json").read_text())
    return Fixture(root, params, meta["counts"])


def main() -> None:
    evaluations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    fixture = build(Params(evaluations=evaluations), log=print)
    print(json.dumps({"root": str(fixture.root), **fixture.counts}, indent=2))


if __name__ == "__main__":
    main()
