"""RAGAS (0.4) metrics on recorded RAG answers, in the provider's managed environment.

RAGAS scores rows that already hold an answer: the benchmark's `dataset` is a JSONL file of
`question`, `contexts` (the retrieved passages), `answer` and `reference` (RAGAS's own names
`user_input`, `retrieved_contexts`, `response`, `reference`/`ground_truth` work too, and
`reference_contexts` for summary_score). `drivers/ragas_driver.py`, run with the environment's
python (RAGAS is never imported here), scores each row with RAGAS's metric classes
(`ragas.metrics.collections`); the adapter writes its input (`ragas_config.json`) and parses its
output (`ragas_output.json`).

What a metric needs besides the rows:
- nothing: exact_match, string_present, non_llm_string_similarity, bleu_score, rouge_score,
  chrf_score, quoted_spans_alignment;
- embeddings: semantic_similarity (and answer_relevancy, answer_correctness). They come from the
  Model under evaluation when it has `type: embedding` — `local: {package|path}` is loaded with
  sentence-transformers in the environment (the package must be among the Provider's
  requirements), `endpoint: {api: embeddings}` is called over HTTP — else from the Provider's
  `config.embedding_package`;
- a judge: faithfulness, answer_relevancy, answer_correctness, answer_accuracy,
  context_precision, context_utilization, context_recall, context_relevance,
  context_entity_recall, response_groundedness, factual_correctness, noise_sensitivity,
  summary_score. The judge is the Model the Collection names (`judge:`), called through its
  chat endpoint with RAGAS's `llm_factory` (instructor, JSON mode) and the judge Model's
  temperature, top_p and max_tokens; its key goes to the driver through the environment only.

Params: `metric` or `metrics` (a list; default the primary metric — which is always computed),
`limit` (the first N rows), `seed`, `max_tokens` and `temperature` (the judge's requests),
and each metric's own options, given to every requested metric that takes them:
`rouge_type` (rouge1 | rougeL), `mode` (rouge: fmeasure | precision | recall; factual_correctness:
f1 | precision | recall; noise_sensitivity: relevant | irrelevant), `distance_measure`
(levenshtein | hamming | jaro | jaro_winkler), `threshold` (semantic_similarity), `strictness`
(answer_relevancy), `weights` and `beta` (answer_correctness), `atomicity`, `coverage`,
`max_retries` (RAGAS's own re-tries of answer_accuracy, context_relevance and
response_groundedness; default 5), `casefold`, `min_span_words`, `length_penalty`, `coeff`.
Provider `config`: `reasks` (instructor's re-asks when a judge answer does not parse; default 1),
`endpoint_retries` (per request, on connection errors, 429 and 5xx; default 2),
`embedding_package`, `device` (sentence-transformers'; default its own choice).

Metrics: each requested metric under its RAGAS name, the mean over rows. A judged metric also
reports `<name>_judged` and `<name>_unjudged`: rows whose judge answer could not be used (did not
parse, was cut off, gave RAGAS nothing to score, i.e. NaN) are counted, not scored as 0, and the
mean is over judged rows only; no judged row at all for the primary metric fails the unit. A
metric without a judge must score every row. `judge_requests` counts the calls to the judge.
Artifacts: `samples.jsonl` (per row: the scores, and each unscored row's reason), the driver's
input (`ragas_config.json`, rows included, no secrets), output and log.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import JsonValue

from evalhub.adapters.frameworks.process import log_tail
from evalhub.adapters.openai_client import api_key
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.core.resolved import ResolvedModel
from evalhub.ports import JobCallbacks

DRIVER = Path(__file__).with_name("drivers") / "ragas_driver.py"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
JUDGE_KEY = "EVALHUB_RAGAS_JUDGE_API_KEY"  # how keys reach the driver: its environment only
EMBEDDINGS_KEY = "EVALHUB_RAGAS_EMBEDDINGS_API_KEY"


@dataclass(frozen=True)
class Metric:
    """A RAGAS metric class (in ragas.metrics.collections) and what it needs."""

    cls: str
    inputs: tuple[str, ...]  # the row fields its `ascore` takes, RAGAS names
    judge: bool = False
    embeddings: Literal["required", "optional"] | None = None
    options: tuple[str, ...] = ()


_TEXT = ("reference", "response")
_GROUNDED = ("user_input", "response", "retrieved_contexts")
METRICS: dict[str, Metric] = {
    "exact_match": Metric("ExactMatch", _TEXT),
    "string_present": Metric("StringPresence", _TEXT),
    "non_llm_string_similarity": Metric(
        "NonLLMStringSimilarity", _TEXT, options=("distance_measure",)
    ),
    "bleu_score": Metric("BleuScore", _TEXT),
    "rouge_score": Metric("RougeScore", _TEXT, options=("rouge_type", "mode")),
    "chrf_score": Metric("CHRFScore", _TEXT),
    "quoted_spans_alignment": Metric(
        "QuotedSpansAlignment",
        ("response", "retrieved_contexts"),
        options=("casefold", "min_span_words"),
    ),
    "semantic_similarity": Metric(
        "SemanticSimilarity", _TEXT, embeddings="required", options=("threshold",)
    ),
    "faithfulness": Metric("Faithfulness", _GROUNDED, judge=True),
    "answer_relevancy": Metric(
        "AnswerRelevancy",
        ("user_input", "response"),
        judge=True,
        embeddings="required",
        options=("strictness",),
    ),
    "answer_correctness": Metric(
        "AnswerCorrectness",
        ("user_input", "response", "reference"),
        judge=True,
        embeddings="optional",
        options=("weights", "beta"),
    ),
    "answer_accuracy": Metric(
        "AnswerAccuracy", ("user_input", "response", "reference"), True, options=("max_retries",)
    ),
    "context_precision": Metric(
        "ContextPrecision", ("user_input", "reference", "retrieved_contexts"), True
    ),
    "context_utilization": Metric("ContextUtilization", _GROUNDED, True),
    "context_recall": Metric(
        "ContextRecall", ("user_input", "retrieved_contexts", "reference"), True
    ),
    "context_relevance": Metric(
        "ContextRelevance", ("user_input", "retrieved_contexts"), True, options=("max_retries",)
    ),
    "context_entity_recall": Metric(
        "ContextEntityRecall", ("reference", "retrieved_contexts"), True
    ),
    "response_groundedness": Metric(
        "ResponseGroundedness", ("response", "retrieved_contexts"), True, options=("max_retries",)
    ),
    "factual_correctness": Metric(
        "FactualCorrectness",
        ("response", "reference"),
        True,
        options=("mode", "beta", "atomicity", "coverage"),
    ),
    "noise_sensitivity": Metric(
        "NoiseSensitivity",
        ("user_input", "response", "reference", "retrieved_contexts"),
        True,
        options=("mode",),
    ),
    "summary_score": Metric(
        "SummaryScore",
        ("reference_contexts", "response"),
        True,
        options=("length_penalty", "coeff"),
    ),
}
# RAGAS field -> the dataset keys accepted for it, first found wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "user_input": ("question", "user_input"),
    "response": ("answer", "response"),
    "retrieved_contexts": ("contexts", "retrieved_contexts"),
    "reference": ("reference", "ground_truth"),
    "reference_contexts": ("reference_contexts",),
}
LISTS = {"retrieved_contexts", "reference_contexts"}
OWN_PARAMS = {"metric", "metrics", "limit", "seed", "max_tokens", "temperature"}
IGNORED_PARAMS = {"num_fewshot"}  # evaluation-wide params that mean nothing to RAGAS


# -- what to compute ------------------------------------------------------------------------------


def requested_metrics(params: dict[str, JsonValue], primary: str) -> list[str]:
    wanted = params.get("metrics")
    if wanted is None:
        wanted = [params.get("metric", primary)]
    if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
        raise UnitError("param `metrics` must be a list of RAGAS metric names")
    names = list(dict.fromkeys(str(n) for n in wanted))
    if primary in METRICS and primary not in names:
        names.append(primary)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UnitError(
            f"unknown RAGAS metric {unknown[0]!r}", f"metrics: {', '.join(sorted(METRICS))}"
        )
    return names


def metric_options(params: dict[str, JsonValue], names: list[str]) -> dict[str, dict[str, Any]]:
    """Each metric's own options from the params; a param no requested metric takes is an
    error (a typo would otherwise be silently ignored)."""
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in params.items():
        if key in OWN_PARAMS or key in IGNORED_PARAMS:
            continue
        takers = [n for n in names if key in METRICS[n].options]
        if not takers:
            accepted = sorted(OWN_PARAMS | {o for n in names for o in METRICS[n].options})
            raise UnitError(
                f"param `{key}` means nothing to {', '.join(names)}",
                f"params here: {', '.join(accepted)}",
            )
        for name in takers:
            options[name][key] = value
    return options


def _count(
    values: dict[str, JsonValue], name: str, default: int | None, minimum: int = 0
) -> int | None:
    value = values.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive" if minimum else "a non-negative"
        raise UnitError(f"`{name}` must be {kind} integer, not {value!r}")
    return value


def _number(values: dict[str, JsonValue], name: str, default: float) -> float:
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(f"`{name}` must be a number, not {value!r}")
    return float(value)


# -- rows -----------------------------------------------------------------------------------------


def _field(row: dict[str, Any], name: str) -> Any:
    for key in FIELDS[name]:
        if row.get(key) not in (None, "", []):
            return row[key]
    return None


def load_rows(path: Path, limit: int | None, needed: set[str]) -> list[dict[str, Any]]:
    """The rows under RAGAS's field names, with every field a requested metric needs."""
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UnitError(f"cannot read the dataset {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise UnitError(f"{path}:{number}: not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise UnitError(f"{path}:{number}: a row must be a JSON object")
        row: dict[str, Any] = {}
        for name in [n for n in FIELDS if n in needed or n == "user_input"]:
            value = _field(raw, name)
            if name in LISTS and isinstance(value, str):
                value = [value]
            if value is None:
                if name not in needed:
                    continue
                keys = " or ".join(f"`{k}`" for k in FIELDS[name])
                raise UnitError(f"{path}:{number}: the row has no {keys}, which the metrics need")
            ok = (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
                if name in LISTS
                else isinstance(value, str)
            )
            if not ok:
                kind = "a list of strings" if name in LISTS else "a string"
                raise UnitError(f"{path}:{number}: `{FIELDS[name][0]}` must be {kind}")
            row[name] = value
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise UnitError(f"{path} holds no rows")
    return rows


# -- judge and embeddings -------------------------------------------------------------------------


def judge_config(job: JobSpec, names: list[str]) -> dict[str, Any] | None:
    graded = [n for n in names if METRICS[n].judge]
    if not graded:
        return None
    unit = job.spec
    judge = unit.judge
    if judge is None:
        raise UnitError(
            f"{', '.join(graded)} {'is' if len(graded) == 1 else 'are'} graded by a judge model, "
            "but this unit has none",
            "name a judge on the collection (`judge: <model>`)",
        )
    endpoint = judge.endpoint
    if endpoint is None or endpoint.api != "chat":
        reached = "has no endpoint" if endpoint is None else f"is served through {endpoint.api}"
        raise UnitError(
            f"the judge Model {judge.name} {reached}; RAGAS asks its judge through the chat API",
            "name a Model with `endpoint: {api: chat}` as the collection's judge",
        )
    params = unit.params
    config = unit.provider.config
    return {
        "name": judge.name,
        "base_url": endpoint.url.rstrip("/"),
        "model": endpoint.served_name,
        "api_key_env": JUDGE_KEY if endpoint.api_key_env else None,
        "temperature": _number(params, "temperature", judge.defaults.temperature),
        "top_p": judge.defaults.top_p,
        "max_tokens": _count(params, "max_tokens", judge.defaults.max_tokens, minimum=1),
        "seed": _count(params, "seed", None),
        "timeout": judge.defaults.timeout_seconds,
        "reasks": _count(config, "reasks", 1),
        "endpoint_retries": _count(config, "endpoint_retries", 2),
    }


def requirement_name(requirement: str) -> str:
    """The normalised (PEP 503) project name of a pip requirement."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    name = match.group(1) if match else requirement
    return re.sub(r"[-_.]+", "-", name).lower()


def _package(job: JobSpec, package: str, owner: str) -> dict[str, Any]:
    provider = job.spec.provider
    if requirement_name(package) not in {requirement_name(r) for r in provider.requirements}:
        raise UnitError(
            f"{owner} is shipped by the package {package}, which is not among the "
            f"{provider.name} Provider's requirements",
            f"add `{package}` (and torch==2.13.0, sentence-transformers) to its `requirements`",
        )
    return {"kind": "package", "package": package}


def _model_embeddings(job: JobSpec, model: ResolvedModel) -> dict[str, Any]:
    if model.endpoint is not None:
        endpoint = model.endpoint
        if endpoint.api != "embeddings":
            raise UnitError(
                f"Model {model.name} is served through the {endpoint.api} API, which returns no "
                "embeddings",
                "give the Model `endpoint.api: embeddings` (an OpenAI-compatible /v1/embeddings)",
            )
        return {
            "kind": "endpoint",
            "base_url": endpoint.url.rstrip("/"),
            "model": endpoint.served_name,
            "api_key_env": EMBEDDINGS_KEY if endpoint.api_key_env else None,
            "timeout": model.defaults.timeout_seconds,
            "endpoint_retries": _count(job.spec.provider.config, "endpoint_retries", 2),
        }
    local = model.local
    if local is not None and local.package is not None:
        return _package(job, local.package, f"Model {model.name}")
    if local is None or local.path is None:
        raise UnitError(f"Model {model.name} has neither an endpoint nor a local model")
    path = Path(job.spec_root) / local.path
    if not path.is_dir():
        raise UnitError(
            f"the model directory {path} (Model {model.name}) does not exist",
            "`local.path` is relative to the Model's spec file",
        )
    return {"kind": "path", "path": str(path)}


def embeddings_config(job: JobSpec, names: list[str]) -> dict[str, Any] | None:
    """Where the driver gets embeddings: the evaluated Model when it is an embedding model,
    else the Provider's `config.embedding_package`."""
    wanting = [n for n in names if METRICS[n].embeddings]
    if not wanting:
        return None
    unit = job.spec
    config = unit.provider.config
    found: dict[str, Any] | None = None
    if unit.model.type == "embedding":
        found = _model_embeddings(job, unit.model)
    elif isinstance(config.get("embedding_package"), str):
        found = _package(job, str(config["embedding_package"]), "`config.embedding_package`")
    if found is None:
        required = [n for n in wanting if METRICS[n].embeddings == "required"]
        if not required:
            return None
        raise UnitError(
            f"{', '.join(required)} needs embeddings, but Model {unit.model.name} is "
            f"{unit.model.type} and the {unit.provider.name} Provider sets no "
            "`config.embedding_package`",
            "evaluate a Model with `type: embedding`, or name an embedding model package in "
            "the Provider's config",
        )
    if found["kind"] != "endpoint" and isinstance(config.get("device"), str):
        found["device"] = config["device"]
    return found


def driver_config(job: JobSpec) -> dict[str, Any]:
    unit = job.spec
    if unit.dataset is None:
        raise UnitError(
            f"ragas benchmark {unit.benchmark} has no `dataset`",
            "give the benchmark a JSONL `dataset` in the ragas Provider's catalogue",
        )
    names = requested_metrics(unit.params, unit.primary_metric)
    options = metric_options(unit.params, names)
    limit = _count(unit.params, "limit", None, minimum=1)
    judge = judge_config(job, names)
    embeddings = embeddings_config(job, names)
    needed = {field for n in names for field in METRICS[n].inputs}
    rows = load_rows(Path(job.spec_root) / unit.dataset, limit, needed)
    metrics = [
        {
            "name": name,
            "class": METRICS[name].cls,
            "inputs": list(METRICS[name].inputs),
            "options": options[name],
            "llm": METRICS[name].judge,
            "embeddings": METRICS[name].embeddings,
        }
        for name in names
    ]
    return {
        "rows": rows,
        "metrics": metrics,
        "judge": judge,
        "embeddings": embeddings,
        "concurrency": job.concurrency,
    }


def command(job: JobSpec, config_path: Path, output_path: Path) -> list[str]:
    python = Path(str(job.environment)) / "bin" / "python"
    return [str(python), str(DRIVER), str(config_path), str(output_path)]


# -- results --------------------------------------------------------------------------------------


def _score(entry: Any) -> float | None:
    value = entry.get("value") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def parse_output(
    data: Any, config: dict[str, Any], primary: str
) -> tuple[dict[str, float], list[dict[str, Any]], str | None, UnitError | None]:
    """Metrics, one record per row, RAGAS's version and the unit's failure, if it failed,
    from the driver's output (the records are kept either way: they say why)."""
    if not isinstance(data, dict):
        raise UnitError("the ragas driver wrote something that is not a JSON object")
    if data.get("error"):
        raise UnitError(str(data["error"]), str(data.get("hint") or "") or "see ragas.log")
    rows = config["rows"]
    scores = data.get("metrics")
    if not isinstance(scores, dict):
        raise UnitError("the ragas driver's output has no `metrics`", "see ragas.log")
    metrics: dict[str, float] = {}
    records = [
        {"row": i + 1, **{k: row[k] for k in FIELDS if k in row}} for i, row in enumerate(rows)
    ]
    failure: UnitError | None = None
    judge = (config.get("judge") or {}).get("name", "the judge")
    for spec in config["metrics"]:
        name = spec["name"]
        entries = scores.get(name)
        if not isinstance(entries, list) or len(entries) != len(rows):
            raise UnitError(f"the ragas driver reported no scores for {name}", "see ragas.log")
        values = [_score(e) for e in entries]
        errors = [str(e.get("error") or "no score") if isinstance(e, dict) else "" for e in entries]
        for record, entry, value, error in zip(records, entries, values, errors, strict=True):
            record[name] = value
            if value is None:
                record[f"{name}_error"] = error or "no score"
            if spec.get("llm") and isinstance(entry, dict):
                record[f"{name}_judge_calls"] = entry.get("judge_calls", 0)
        judged = [v for v in values if v is not None]
        missing = [i for i, v in enumerate(values) if v is None]
        if judged:
            metrics[name] = sum(judged) / len(judged)
        if spec.get("llm"):
            metrics[f"{name}_judged"] = float(len(judged))
            metrics[f"{name}_unjudged"] = float(len(missing))
            if not judged and name == primary and failure is None:
                failure = UnitError(
                    f"the judge {judge} could not grade any of the {len(values)} rows for "
                    f"{name} (row {missing[0] + 1}: {errors[missing[0]] or 'no score'})",
                    "use a stronger judge model, or a larger `max_tokens` for its answers; "
                    "every row's reason is in samples.jsonl in the unit's output directory",
                )
        elif missing and failure is None:
            failure = UnitError(
                f"{name} could not score row {missing[0] + 1}: {errors[missing[0]] or 'no score'}",
                "check that row of the dataset; see samples.jsonl",
            )
    if config.get("judge") and isinstance(data.get("judge_requests"), int):
        metrics["judge_requests"] = float(data["judge_requests"])
    version = data.get("ragas_version")
    return metrics, records, str(version) if version else None, failure


def secrets(job: JobSpec, config: dict[str, Any]) -> dict[str, str]:
    """The judge's and the embedding endpoint's keys, for the driver's environment (never a
    file or the command line), read from the variables their Models name."""
    found: dict[str, str] = {}
    pairs = (
        (JUDGE_KEY, config["judge"], job.spec.judge),
        (EMBEDDINGS_KEY, config["embeddings"], job.spec.model),
    )
    for variable, part, model in pairs:
        endpoint = model.endpoint if model is not None else None
        if part and part.get("api_key_env") and endpoint is not None:
            key = api_key(endpoint)
            if key:
                found[variable] = key
    return found


class RagasAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        if not job.environment:
            raise UnitError(
                "ragas runs in its managed environment, but the provider lists no requirements",
                'add `requirements: ["ragas==0.4.3", …]` to the ragas Provider',
            )
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = driver_config(job)
        env = {**os.environ, **OFFLINE, "RAGAS_DO_NOT_TRACK": "true"}
        env["TOKENIZERS_PARALLELISM"] = "false"
        for variable in (JUDGE_KEY, EMBEDDINGS_KEY):
            env.pop(variable, None)
        env.update(secrets(job, config))
        config_path, output_path, log_path = (
            out / "ragas_config.json",
            out / "ragas_output.json",
            out / "ragas.log",
        )
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        output_path.unlink(missing_ok=True)
        names = [m["name"] for m in config["metrics"]]
        callbacks.report_status(
            JobStatusUpdate(
                phase="running",
                message=f"ragas {', '.join(names)}",
                completed=0,
                total=len(config["rows"]),
            )
        )
        started = time.monotonic()
        with log_path.open("w", encoding="utf-8") as log:
            try:
                proc = subprocess.run(
                    command(job, config_path, output_path), cwd=out, env=env, stdout=log,
                    stderr=subprocess.STDOUT, timeout=job.timeout_seconds, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise UnitError(
                    f"ragas timed out after {job.timeout_seconds:g} s",
                    "fewer rows (`limit`), or a faster judge; see ragas.log",
                ) from None
        try:
            data = json.loads(output_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnitError(
                f"the ragas driver exited {proc.returncode} without a result: {log_tail(log_path)}",
                "see ragas.log",
            ) from None
        except ValueError:
            raise UnitError("the ragas driver's output is not JSON", "see ragas.log") from None
        if proc.returncode != 0 and not (isinstance(data, dict) and data.get("error")):
            raise UnitError(f"the ragas driver exited {proc.returncode}: {log_tail(log_path)}")
        metrics, records, version, failure = parse_output(data, config, job.spec.primary_metric)
        with (out / "samples.jsonl").open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if failure is not None:
            raise failure
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics=metrics,
            primary_metric=job.spec.primary_metric,
            samples=len(records),
            duration_seconds=time.monotonic() - started,
            framework="ragas",
            framework_version=version,
            artifacts={
                "samples.jsonl": "samples.jsonl",
                "ragas_config.json": "ragas_config.json",
                "ragas_output.json": "ragas_output.json",
                "ragas.log": "ragas.log",
            },
        )
