"""MTEB 2 (the Massive Text Embedding Benchmark) on an embedding Model, in the provider's managed
environment, run by drivers/mteb_driver.py. The manual: docs/frameworks/mteb.md."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from evalhub.adapters.frameworks.base import (
    api_key,
    output_dir,
    python,
    read_output,
    succeeded,
    write_json,
)
from evalhub.adapters.frameworks.embeddings import embeddings_source
from evalhub.adapters.frameworks.runner import Driver, driver_environment, run_driver
from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

DRIVER = Path(__file__).with_name("drivers") / "mteb_driver.py"
REQUIREMENTS = '["torch==2.13.0", "mteb==2.26.24", "sentence-transformers==6.2.0"]'
KEY_VARIABLE = "EVALHUB_MTEB_API_KEY"  # how the endpoint's key reaches the driver
TASK_TYPES = ("STS", "PairClassification", "Retrieval")
NOT_METRICS = {"hf_subset", "languages", "mteb_version"}


def task_config(job: JobSpec) -> dict[str, Any]:
    """The task the driver builds: its type, data and params, validated."""
    unit = job.spec
    params = Settings.params(job, "mteb")
    if unit.dataset is None:
        raise UnitError(
            f"mteb benchmark {unit.benchmark} has no `dataset`",
            "give the benchmark a JSONL `dataset` in the mteb Provider's catalogue",
        )
    data = Path(job.spec_root) / unit.dataset
    if not data.is_file():
        raise UnitError(f"the dataset {data} does not exist")
    kind = params.choice("task_type", TASK_TYPES, "STS")
    task: dict[str, Any] = {
        "name": unit.benchmark,
        "type": kind,
        "data": str(data),
        "revision": unit.files.get(unit.dataset, "local"),
        "limit": params.integer("limit", minimum=1),
    }
    if kind == "STS":
        low, high = params.number("min_score", 0.0), params.number("max_score", 5.0)
        if not low < high:
            raise UnitError(f"param `min_score` ({low:g}) must be below `max_score` ({high:g})")
        task.update(min_score=low, max_score=high)
    if kind == "Retrieval":
        k_values = params.raw("k_values", [1, 3, 5, 10])
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
    model = job.spec.model
    if model.type != "embedding":
        raise UnitError(
            f"MTEB evaluates embedding models; Model {model.name} is {model.type}",
            "run mteb benchmarks on a Model with `type: embedding`",
        )
    base: dict[str, Any] = {"name": model.name, "revision": model.revision}
    device = job.spec.provider.config.get("device")
    if device is not None:
        base["device"] = str(device)
    source = embeddings_source(job, model)
    if source.kind == "endpoint":
        return {
            **base,
            "source": "endpoint",
            "url": source.url,
            "served_name": source.served_name,
            "api_key_variable": KEY_VARIABLE if source.keyed else None,
            "timeout": source.timeout,
            "max_retries": Settings.config(job, "mteb").integer("max_retries", 3, minimum=0),
        }
    if source.kind == "package":
        return {**base, "source": "package", "package": source.package}
    return {**base, "source": "path", "path": source.path}


def driver_config(job: JobSpec, out: Path) -> dict[str, Any]:
    default = Settings.config(job, "mteb").integer("batch_size", 32, minimum=1)
    batch_size = Settings.params(job, "mteb").integer("batch_size", default, minimum=1)
    return {
        "task": task_config(job),
        "model": model_config(job),
        "batch_size": batch_size,
        "cache_dir": str(out / "mteb"),
        "predictions_dir": str(out / "predictions"),
    }


def command(job: JobSpec, config_path: Path, output_path: Path) -> list[str]:
    return [str(python(job, "mteb", REQUIREMENTS)), str(DRIVER), str(config_path), str(output_path)]


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
        python(job, "mteb", REQUIREMENTS)
        out = output_dir(job)
        config = driver_config(job, out)
        own = {"TOKENIZERS_PARALLELISM": "false", "MTEB_CACHE": config["cache_dir"]}
        endpoint = job.spec.model.endpoint
        key = api_key(endpoint) if endpoint is not None else None
        if key:
            own[KEY_VARIABLE] = key  # through the environment, never a file or the command line
        output_path = out / "mteb_output.json"
        output_path.unlink(missing_ok=True)
        cmd = command(job, write_json(out / "mteb_config.json", config), output_path)
        callbacks.report_status(
            JobStatusUpdate(phase="running", message=f"mteb {config['task']['type']}")
        )
        started = time.monotonic()
        env = driver_environment(job, own)  # MTEB_CACHE: never the user's ~/.cache/mteb
        run = run_driver(Driver("mteb", cmd, out, env, out / "mteb.log", job.timeout_seconds))
        data = read_output(output_path, "mteb", run.returncode, run.tail())
        metrics, samples, version = parse_output(data)
        if run.returncode != 0:
            raise UnitError(f"the mteb driver exited {run.returncode}: {run.tail()}")
        return succeeded(job, "mteb", started, metrics, samples, version, _artifacts(out, data))
