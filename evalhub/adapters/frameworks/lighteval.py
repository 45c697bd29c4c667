"""Hugging Face LightEval (0.13), through its LiteLLM endpoint backend, in the provider's managed
environment, run by drivers/lighteval_driver.py. The manual: docs/frameworks/lighteval.md."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

from evalhub.adapters.frameworks.base import api_key, output_dir, python, succeeded, write_json
from evalhub.adapters.frameworks.runner import (
    Driver,
    Finished,
    driver_environment,
    log_tail,
    run_driver,
)
from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

DRIVER = Path(__file__).resolve().parent / "drivers" / "lighteval_driver.py"
REQUIREMENTS = '["torch==2.13.0", "lighteval[litellm]==0.13.0", "litellm<1.80", "xxhash<4"]'
PLACEHOLDER_KEY = "no-key"  # LiteLLM's openai provider insists on a key; local servers ignore it
REFUSED_IN_METRIC_NAMES = re.compile(r"[^\w.\- :/]")


def custom_tasks_file(job: JobSpec) -> Path:
    """The benchmark's custom tasks module: the one `.py` file among its `files`."""
    root = Path(job.spec_root)
    found: list[Path] = []
    for relative in job.spec.files:
        path = root / relative
        if path.is_dir():
            found += sorted(p for p in path.glob("*.py") if p.name != "__init__.py")
        elif path.suffix == ".py":
            found.append(path)
    if len(found) != 1:
        what = "none" if not found else ", ".join(p.name for p in found)
        raise UnitError(
            f"{job.spec.benchmark}: lighteval needs exactly one custom tasks file (.py) among the "
            f"benchmark's `files`, found {what}",
            "list the Python module that defines TASKS_TABLE in the benchmark's `files:`",
        )
    return found[0]


def task_spec(job: JobSpec) -> str:
    params = Settings.params(job, "lighteval")
    task = str(params.raw("task") or job.spec.benchmark)
    return f"{task}|{int(params.number('num_fewshot', 0))}"


def model_parameters(job: JobSpec, cache_dir: Path) -> dict[str, Any]:
    """LiteLLMModelConfig's fields (written as the `model_parameters` of lighteval's YAML)."""
    unit = job.spec
    if unit.model.type != "generative" or unit.model.endpoint is None:
        raise UnitError(
            f"lighteval evaluates generative models through an endpoint; {unit.model.name} is not",
            "evaluate it on a Model with `type: generative` and an `endpoint`",
        )
    endpoint = unit.model.endpoint
    if endpoint.api != "chat":
        raise UnitError(
            f"lighteval's LiteLLM backend sends chat requests only; {unit.model.name} has "
            f"`api: {endpoint.api}`",
            "evaluate it on a Model with `api: chat` (the same server's /v1/chat/completions)",
        )
    defaults = unit.model.defaults
    params, config = Settings.params(job, "lighteval"), Settings.config(job, "lighteval")
    generation: dict[str, Any] = {
        "temperature": params.number("temperature", defaults.temperature),
        "max_new_tokens": int(params.number("max_tokens", defaults.max_tokens)),
    }
    top_p = params.number("top_p", defaults.top_p)
    if top_p is not None:
        generation["top_p"] = float(top_p)
    seed = params.number("seed")
    if seed is not None:
        generation["seed"] = int(seed)
    parameters: dict[str, Any] = {
        "model_name": f"openai/{endpoint.served_name}",
        "base_url": endpoint.url.rstrip("/"),
        "concurrent_requests": max(1, int(config.number("concurrent_requests", job.concurrency))),
        "api_max_retry": 1 + max(0, int(config.number("max_retries", 3))),
        "api_retry_sleep": config.number("retry_sleep", 1.0),
        "max_model_length": int(config.number("max_model_length", 4096)),
        "timeout": float(defaults.timeout_seconds),
        "cache_dir": str(cache_dir),
        "generation_parameters": generation,
    }
    if config.raw("system_prompt"):
        parameters["system_prompt"] = str(config.raw("system_prompt"))
    return parameters


def driver_config(job: JobSpec, out: Path) -> dict[str, Any]:
    """What the driver reads: lighteval's arguments and the model configuration."""
    tasks = custom_tasks_file(job)
    output_dir = out / "lighteval"
    model_config = out / "model_config.yaml"
    args = [
        "endpoint", "litellm", str(model_config), task_spec(job),
        "--custom-tasks", str(tasks),
        "--output-dir", str(output_dir),
        "--save-details",
    ]  # fmt: skip
    limit = Settings.params(job, "lighteval").number("limit")
    if limit is not None:
        args += ["--max-samples", str(int(limit))]
    return {
        "args": args,
        "custom_tasks": str(tasks),
        "output_dir": str(output_dir),
        "model_config": str(model_config),
        "model_parameters": model_parameters(job, out / "cache"),
    }


def metric_name(name: str) -> str:
    return REFUSED_IN_METRIC_NAMES.sub("_", name)


def parse_results(path: Path, task: str) -> dict[str, float]:
    """The task's numbers from lighteval's results file (`results` -> `<task>|<fewshot>`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnitError(f"cannot read lighteval's results {path.name}: {exc}") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise UnitError(f"lighteval's results file {path.name} has no `results`")
    entry = results.get(task)
    if entry is None:  # the same task under another few-shot suffix or suite prefix
        name = task.split("|")[0]
        matches = [v for k, v in results.items() if k != "all" and name in k.split("|")]
        entry = matches[0] if len(matches) == 1 else None
    if not isinstance(entry, dict):
        found = ", ".join(sorted(results)) or "none"
        raise UnitError(f"lighteval's results have no task {task!r} (found: {found})")
    metrics: dict[str, float] = {}
    for key, value in entry.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            metrics[metric_name(str(key))] = float(value)
    if not metrics:
        raise UnitError(f"lighteval reported no numeric metric for {task!r} ({path.name})")
    return metrics


def read_output(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def failure(run: Finished, output: dict[str, Any]) -> UnitError:
    if output.get("error"):
        hint = str(output.get("hint") or "see lighteval.log")
        return UnitError(f"lighteval: {output['error']}", hint)
    return run.failure()


def artifacts(out: Path, output: dict[str, Any], results: Path) -> dict[str, str]:
    found = {"results.json": str(results.relative_to(out))}
    for entry in output.get("details") or []:
        name = metric_name(str(entry.get("task", "details"))).replace("|", "_")
        for kind in ("parquet", "jsonl"):
            path = Path(str(entry.get(kind, "")))
            if path.is_file() and out in path.parents:
                found[f"details/{name}.{kind}"] = str(path.relative_to(out))
    for name in (
        "model_config.yaml",
        "lighteval_config.json",
        "lighteval_output.json",
        "lighteval.log",
    ):
        if (out / name).is_file():
            found[name] = name
    return found


def samples(output: dict[str, Any], task: str) -> int:
    counts = output.get("samples") or {}
    return int(counts.get(task, sum(v for v in counts.values() if isinstance(v, int))))


class LightevalAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        cmd = [str(python(job, "lighteval", REQUIREMENTS)), str(DRIVER)]
        out = output_dir(job)
        config = driver_config(job, out)
        cache = Path(config["model_parameters"]["cache_dir"])
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        shutil.rmtree(config["output_dir"], ignore_errors=True)
        output_file = out / "lighteval_output.json"
        output_file.unlink(missing_ok=True)
        cmd += [str(write_json(out / "lighteval_config.json", config)), str(output_file)]
        endpoint = job.spec.model.endpoint
        # Through the environment, never the command line; a placeholder, not nothing, for a
        # Model that names no key variable: LiteLLM's openai provider insists on one.
        key = (api_key(endpoint) if endpoint else None) or PLACEHOLDER_KEY
        env = driver_environment(
            job, {"OPENAI_API_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        )
        callbacks.report_status(JobStatusUpdate(phase="running", message="lighteval"))
        started = time.monotonic()
        hint = "lower `limit`, or raise the evaluation's execution.timeout_seconds"
        log = out / "lighteval.log"
        try:  # cwd is the scratch cache: LiteLLM creates its (disabled) disk cache there.
            run = run_driver(Driver("lighteval", cmd, cache, env, log, job.timeout_seconds, hint))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        output = read_output(output_file)
        if run.returncode != 0:
            raise failure(run, output)
        if not output:
            raise UnitError(f"lighteval's driver wrote no {output_file.name}: {log_tail(log)}")
        if not output.get("results"):
            raise UnitError("lighteval wrote no results file", "see lighteval.log")
        results = Path(str(output["results"]))
        if out not in results.parents:
            raise UnitError(f"lighteval's results file {results} is outside {out}")
        task = task_spec(job)
        metrics = parse_results(results, task)
        version = (output.get("versions") or {}).get("lighteval")
        return succeeded(
            job, "lighteval", started, metrics, samples(output, task),
            str(version) if version else None, artifacts(out, output, results),
        )  # fmt: skip
