"""MTEB 2 (the Massive Text Embedding Benchmark) on an embedding Model, in the provider's managed
environment.

The benchmark's `dataset` (a JSONL file) becomes a custom MTEB task, built and evaluated by
`drivers/mteb_driver.py` run with the environment's python (MTEB is never imported here); the
adapter writes the driver's input (`mteb_config.json`) and parses its output (`mteb_output.json`).
Rows, by `task_type`:
- `STS`: `sentence1`, `sentence2`, `score` (within `min_score`..`max_score`);
- `PairClassification`: `sentence1`, `sentence2`, `label` (0 or 1);
- `Retrieval`: `query`, `relevant` (passages), optional `irrelevant` (distractor passages); the
  corpus is every distinct passage of the file.

The Model must have `type: embedding` and one of
- `local: {package: …}`: a package shipping a sentence-transformers model (found through its
  `get_model_path()` or its installed files); it must be among the Provider's `requirements`;
- `local: {path: …}`: a sentence-transformers model directory;
- `endpoint: {api: embeddings, …}`: an OpenAI-compatible /v1/embeddings endpoint, called in
  batches with retries; its API key goes to the driver through the environment only.

Params: `task_type` (STS, PairClassification or Retrieval; default STS), `min_score` and
`max_score` (STS's score scale; default 0 and 5), `limit` (the first N rows), `batch_size`
(texts per encoding batch or request), `k_values` (Retrieval cut-offs; default [1, 3, 5, 10]).
Provider `config`: `batch_size` (default 32), `device` (sentence-transformers'; default its own
choice), `max_retries` (endpoint retries; default 3).

Metrics: MTEB's scores of the task's test split, flattened, and `main_score` —
- STS: `cosine_spearman` (MTEB's main score), `cosine_pearson`, `manhattan_spearman`,
  `manhattan_pearson`, `euclidean_spearman`, `euclidean_pearson`, `spearman` and `pearson` (with
  the model's own similarity function): correlations in [-1, 1];
- PairClassification: `{similarity,cosine,manhattan,euclidean,dot,max}_{accuracy,f1,precision,
  recall,ap}`; main `max_ap`;
- Retrieval: `ndcg_at_k`, `map_at_k`, `recall_at_k`, `precision_at_k`, `mrr_at_k`, `accuracy`,
  `nauc_*`; main `ndcg_at_10`.
Artifacts: MTEB's result JSON, its per-pair predictions, the driver's input and log.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from evalhub.adapters.frameworks.process import log_tail
from evalhub.adapters.openai_client import api_key
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

DRIVER = Path(__file__).with_name("drivers") / "mteb_driver.py"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
KEY_VARIABLE = "EVALHUB_MTEB_API_KEY"  # how the endpoint's key reaches the driver
TASK_TYPES = ("STS", "PairClassification", "Retrieval")
NOT_METRICS = {"hf_subset", "languages", "mteb_version"}


def requirement_name(requirement: str) -> str:
    """The normalised (PEP 503) project name of a pip requirement."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    name = match.group(1) if match else requirement
    return re.sub(r"[-_.]+", "-", name).lower()


def _number(params: dict[str, JsonValue], name: str, default: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(f"param `{name}` must be a number, not {value!r}")
    return float(value)


def _count(
    params: dict[str, JsonValue],
    name: str,
    default: int | None,
    kind: str = "param",
    least: int = 1,
) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UnitError(f"{kind} `{name}` must be an integer of at least {least}, not {value!r}")
    return value


def task_config(job: JobSpec) -> dict[str, Any]:
    """The task the driver builds: its type, data and params, validated."""
    unit = job.spec
    params = unit.params
    if unit.dataset is None:
        raise UnitError(
            f"mteb benchmark {unit.benchmark} has no `dataset`",
            "give the benchmark a JSONL `dataset` in the mteb Provider's catalogue",
        )
    data = Path(job.spec_root) / unit.dataset
    if not data.is_file():
        raise UnitError(f"the dataset {data} does not exist")
    kind = params.get("task_type", "STS")
    if kind not in TASK_TYPES:
        raise UnitError(
            f"param `task_type` {kind!r} is not a task type this adapter builds",
            f"use one of {', '.join(TASK_TYPES)}",
        )
    task: dict[str, Any] = {
        "name": unit.benchmark,
        "type": kind,
        "data": str(data),
        "revision": unit.files.get(unit.dataset, "local"),
        "limit": _count(params, "limit", None),
    }
    if kind == "STS":
        low, high = _number(params, "min_score", 0), _number(params, "max_score", 5)
        if not low < high:
            raise UnitError(f"param `min_score` ({low:g}) must be below `max_score` ({high:g})")
        task.update(min_score=low, max_score=high)
    if kind == "Retrieval":
        k_values = params.get("k_values", [1, 3, 5, 10])
        if (
            not isinstance(k_values, list)
            or not k_values
            or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in k_values)
        ):
            raise UnitError(f"param `k_values` must be a list of positive integers: {k_values!r}")
        task["k_values"] = k_values
    return task


def model_config(job: JobSpec) -> dict[str, Any]:
    """Where the driver finds the model: a package, a directory or an embeddings endpoint."""
    unit = job.spec
    model = unit.model
    if model.type != "embedding":
        raise UnitError(
            f"MTEB evaluates embedding models; Model {model.name} is {model.type}",
            "run mteb benchmarks on a Model with `type: embedding`",
        )
    base: dict[str, Any] = {"name": model.name, "revision": model.revision}
    device = unit.provider.config.get("device")
    if device is not None:
        base["device"] = str(device)
    if model.endpoint is not None:
        endpoint = model.endpoint
        if endpoint.api != "embeddings":
            raise UnitError(
                f"Model {model.name} is served through the {endpoint.api} API, which returns no "
                "embeddings",
                "give the Model `endpoint.api: embeddings` (an OpenAI-compatible /v1/embeddings)",
            )
        return {
            **base,
            "source": "endpoint",
            "url": endpoint.url,
            "served_name": endpoint.served_name,
            "api_key_variable": KEY_VARIABLE if endpoint.api_key_env else None,
            "timeout": model.defaults.timeout_seconds,
            "max_retries": _count(unit.provider.config, "max_retries", 3, "config", least=0),
        }
    local = model.local
    if local is None:
        raise UnitError(f"Model {model.name} has neither an endpoint nor a local model")
    if local.package is not None:
        installed = {requirement_name(r) for r in unit.provider.requirements}
        if requirement_name(local.package) not in installed:
            raise UnitError(
                f"Model {model.name} is shipped by the package {local.package}, which is not "
                f"among the {unit.provider.name} Provider's requirements",
                f"add `{local.package}` to the Provider's `requirements`",
            )
        return {**base, "source": "package", "package": local.package}
    if local.path is None:
        raise UnitError(f"Model {model.name}'s local path leaves the spec root")
    path = Path(job.spec_root) / local.path  # resolved against the spec root, like datasets
    if not path.is_dir():
        raise UnitError(
            f"the model directory {path} (Model {model.name}) does not exist",
            "`local.path` is relative to the Model's spec file",
        )
    return {**base, "source": "path", "path": str(path)}


def driver_config(job: JobSpec, out: Path) -> dict[str, Any]:
    config = job.spec.provider.config
    batch_size = _count(job.spec.params, "batch_size", _count(config, "batch_size", 32, "config"))
    return {
        "task": task_config(job),
        "model": model_config(job),
        "batch_size": batch_size,
        "cache_dir": str(out / "mteb"),
        "predictions_dir": str(out / "predictions"),
    }


def command(job: JobSpec, config_path: Path, output_path: Path) -> list[str]:
    python = Path(str(job.environment)) / "bin" / "python"
    return [str(python), str(DRIVER), str(config_path), str(output_path)]


def flatten(scores: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """MTEB's score entry as flat metrics: numbers kept (finite ones), nested dicts joined
    with `_`, labels (subset, languages, version) dropped."""
    metrics: dict[str, float] = {}
    for key, value in scores.items():
        if key in NOT_METRICS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            metrics.update(flatten(value, name + "_"))
        elif (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            metrics[name] = float(value)
    return metrics


def parse_output(data: Any) -> tuple[dict[str, float], int, str | None]:
    """Metrics, samples and MTEB's version from the driver's output."""
    if not isinstance(data, dict):
        raise UnitError("the mteb driver wrote something that is not a JSON object")
    if data.get("error"):
        raise UnitError(str(data["error"]), str(data.get("hint") or "") or "see mteb.log")
    scores = data.get("scores")
    entries = scores.get("test") if isinstance(scores, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise UnitError("MTEB reported no scores for the test split", "see mteb.log")
    metrics = flatten(entries[0])
    if not metrics:
        raise UnitError("MTEB's scores hold no numbers", "see mteb_output.json")
    version = data.get("mteb_version")
    return metrics, int(data.get("samples") or 0), str(version) if version else None


def _inside(out: Path, path: Any) -> str | None:
    """`path` relative to `out`, if it is a file there."""
    if not isinstance(path, str) or not Path(path).is_file():
        return None
    try:
        return str(Path(path).resolve().relative_to(out.resolve()))
    except ValueError:
        return None


def _artifacts(out: Path, data: dict[str, Any]) -> dict[str, str]:
    artifacts = {"mteb_config.json": "mteb_config.json", "mteb.log": "mteb.log"}
    results = _inside(out, data.get("results_file"))
    if results:
        artifacts["mteb_results.json"] = results
    found = [p for item in data.get("predictions") or [] if (p := _inside(out, item))]
    for path in found:  # one file per task: the similarities or rankings, per pair or query
        artifacts["mteb_predictions.json" if len(found) == 1 else Path(path).name] = path
    return artifacts


class MtebAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        if not job.environment:
            raise UnitError(
                "mteb runs in its managed environment, but the provider lists no requirements",
                'add `requirements: ["torch==2.13.0", "mteb==2.26.24", '
                '"sentence-transformers==6.2.0"]` to the mteb Provider',
            )
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = driver_config(job, out)
        env = {**os.environ, **OFFLINE, "TOKENIZERS_PARALLELISM": "false"}
        env["MTEB_CACHE"] = config["cache_dir"]  # never the user's ~/.cache/mteb
        env.pop(KEY_VARIABLE, None)
        endpoint = job.spec.model.endpoint
        key = api_key(endpoint) if endpoint is not None else None
        if key:
            env[KEY_VARIABLE] = key  # through the environment, never a file or the command line
        config_path, output_path, log_path = (
            out / "mteb_config.json",
            out / "mteb_output.json",
            out / "mteb.log",
        )
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        output_path.unlink(missing_ok=True)
        cmd = command(job, config_path, output_path)
        callbacks.report_status(
            JobStatusUpdate(phase="running", message=f"mteb {config['task']['type']}")
        )
        started = time.monotonic()
        with log_path.open("w", encoding="utf-8") as log:
            try:
                proc = subprocess.run(
                    cmd, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT,
                    timeout=job.timeout_seconds, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise UnitError(f"mteb timed out after {job.timeout_seconds:g} s") from None
        try:
            data = json.loads(output_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnitError(
                f"the mteb driver exited {proc.returncode} without a result: {log_tail(log_path)}",
                "see mteb.log",
            ) from None
        except ValueError:
            raise UnitError("the mteb driver's output is not JSON", "see mteb.log") from None
        metrics, samples, version = parse_output(data)
        if proc.returncode != 0:
            raise UnitError(f"the mteb driver exited {proc.returncode}: {log_tail(log_path)}")
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics=metrics,
            primary_metric=job.spec.primary_metric,
            samples=samples,
            duration_seconds=time.monotonic() - started,
            framework="mteb",
            framework_version=version,
            artifacts=_artifacts(out, data),
        )
