"""RAGAS (0.4) metrics on recorded RAG answers, in the provider's managed environment, run by
drivers/ragas_driver.py. The manual: docs/frameworks/ragas.md."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import JsonValue

from evalhub.adapters.frameworks.base import (
    api_key,
    dataset_rows,
    output_dir,
    python,
    read_output,
    succeeded,
    write_json,
)
from evalhub.adapters.frameworks.embeddings import Embeddings, embeddings_source, required_package
from evalhub.adapters.frameworks.runner import Driver, driver_environment, run_driver
from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

DRIVER = Path(__file__).with_name("drivers") / "ragas_driver.py"
REQUIREMENTS = '["ragas==0.4.3", …]'
SENTENCE_TRANSFORMERS = " (and torch==2.13.0, sentence-transformers)"
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


# -- rows -----------------------------------------------------------------------------------------


def _field(row: dict[str, Any], name: str) -> Any:
    for key in FIELDS[name]:
        if row.get(key) not in (None, "", []):
            return row[key]
    return None


def load_rows(path: Path, limit: int | None, needed: set[str]) -> list[dict[str, Any]]:
    """The rows under RAGAS's field names, with every field a requested metric needs."""
    wanted = [n for n in FIELDS if n in needed or n == "user_input"]

    def ragas_row(number: int, raw: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name in wanted:
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
        return row

    return dataset_rows(path, limit, ragas_row)


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
    params, config = Settings.params(job, "ragas"), Settings.config(job, "ragas")
    return {
        "name": judge.name,
        "base_url": endpoint.url.rstrip("/"),
        "model": endpoint.served_name,
        "api_key_env": JUDGE_KEY if endpoint.api_key_env else None,
        "temperature": params.number("temperature", judge.defaults.temperature),
        "top_p": judge.defaults.top_p,
        "max_tokens": params.integer("max_tokens", judge.defaults.max_tokens, minimum=1),
        "seed": params.integer("seed", minimum=0),
        "timeout": judge.defaults.timeout_seconds,
        "reasks": config.integer("reasks", 1, minimum=0),
        "endpoint_retries": config.integer("endpoint_retries", 2, minimum=0),
    }


def _embeddings(job: JobSpec, source: Embeddings) -> dict[str, Any]:
    """The driver's view of an embeddings source."""
    if source.kind == "endpoint":
        retries = Settings.config(job, "ragas").integer("endpoint_retries", 2, minimum=0)
        return {
            "kind": "endpoint",
            "base_url": str(source.url).rstrip("/"),
            "model": source.served_name,
            "api_key_env": EMBEDDINGS_KEY if source.keyed else None,
            "timeout": source.timeout,
            "endpoint_retries": retries,
        }
    if source.kind == "package":
        return {"kind": "package", "package": source.package}
    return {"kind": "path", "path": source.path}


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
        found = _embeddings(job, embeddings_source(job, unit.model, SENTENCE_TRANSFORMERS))
    elif isinstance(config.get("embedding_package"), str):
        package = str(config["embedding_package"])
        owner = "`config.embedding_package`"
        found = {
            "kind": "package",
            "package": required_package(job, package, owner, SENTENCE_TRANSFORMERS),
        }
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
    limit = Settings.params(job, "ragas").integer("limit", minimum=1)
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
    return [
        str(python(job, "ragas", REQUIREMENTS)),
        str(DRIVER),
        str(config_path),
        str(output_path),
    ]


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


def write_samples(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


class RagasAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        python(job, "ragas", REQUIREMENTS)
        out = output_dir(job)
        config = driver_config(job)
        own = {"RAGAS_DO_NOT_TRACK": "true", "TOKENIZERS_PARALLELISM": "false"}
        env = driver_environment(job, {**own, **secrets(job, config)})
        output_path = out / "ragas_output.json"
        output_path.unlink(missing_ok=True)
        cmd = command(job, write_json(out / "ragas_config.json", config), output_path)
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
        hint = "fewer rows (`limit`), or a faster judge; see ragas.log"
        run = run_driver(
            Driver("ragas", cmd, out, env, out / "ragas.log", job.timeout_seconds, hint)
        )
        data = read_output(output_path, "ragas", run.returncode, run.tail())
        if run.returncode != 0 and not (isinstance(data, dict) and data.get("error")):
            raise UnitError(f"the ragas driver exited {run.returncode}: {run.tail()}")
        metrics, records, version, failure = parse_output(data, config, job.spec.primary_metric)
        write_samples(out / "samples.jsonl", records)
        if failure is not None:
            raise failure
        names = ["samples.jsonl", "ragas_config.json", "ragas_output.json", "ragas.log"]
        artifacts = {name: name for name in names}
        return succeeded(job, "ragas", started, metrics, len(records), version, artifacts)
