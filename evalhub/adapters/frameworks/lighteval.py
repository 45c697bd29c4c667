"""Hugging Face LightEval (0.13), through its LiteLLM endpoint backend, in the provider's managed
environment.

The unit runs as `<env>/bin/python drivers/lighteval_driver.py CONFIG.json OUTPUT.json`: the
driver hands CONFIG's arguments to lighteval's own command line (`lighteval endpoint litellm
MODEL.yaml TASK|FEWSHOT --custom-tasks FILE --output-dir DIR --save-details [--max-samples N]`)
after changing three things in its own process, never a file in site-packages:
- lighteval's task registry loads ONLY the custom tasks module (stock lighteval imports every
  built-in task first, and some of them reach the network or miss a data file when offline);
- a request that still fails after its retries stops the run with the endpoint's error, where
  lighteval would score an empty answer and report a success;
- LiteLLM's disk cache is off and lighteval's sample cache lives in the unit's output directory,
  emptied before the run: every run asks the model again.
LITELLM_LOCAL_MODEL_COST_MAP and HF_*_OFFLINE keep LiteLLM and datasets off the network.

Tasks: the benchmark's `files:` name the custom tasks file (a Python module with a TASKS_TABLE of
LightevalTaskConfig; the one `.py` file among `files`, or in a listed directory); the task is the
benchmark id (or `params.task`), asked for as `<task>|<num_fewshot>`.

Model: LiteLLM's `openai/<served_name>` provider with the Model's `url` as base URL. It sends
chat requests (/v1/chat/completions) only, so the Model needs `api: chat`; lighteval always sets
`response_format`, which LiteLLM's text-completion provider refuses. The API key travels in
OPENAI_API_KEY in the child's environment (a placeholder when the Model names no variable) —
never on the command line or in a file.

Benchmark `params`: `limit` (--max-samples), `num_fewshot` (default 0), `seed`, `temperature`,
`max_tokens`, `top_p` (LiteLLM generation parameters; the last three default to the Model's
`defaults`; lighteval lets `max_tokens` override the task's own generation size), `task`.
Provider `config`: `concurrent_requests` (default: the evaluation's execution concurrency),
`max_retries` (default 3: attempts are 1 + retries), `retry_sleep` (seconds, default 1, doubling),
`max_model_length` (default 4096; given so LiteLLM never looks the model up online),
`system_prompt`.

Metrics: every number lighteval reports for the task in its results file, e.g. `em` and
`em_stderr`; characters MLflow refuses in a metric name (`@`, `=`, `&`, …) become `_`
(`pass@k:k=1&n=1` is recorded as `pass_k:k_1_n_1`). `samples` counts the rows of the details.
Artifacts: `results.json` (lighteval's), `details/<task>.parquet` and `.jsonl` (per sample:
prompt, answer, gold, metric), `model_config.yaml`, `lighteval_config.json` (the driver's input),
`lighteval_output.json` (its output: versions, files, row counts), `lighteval.log`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalhub.adapters.frameworks.process import log_tail
from evalhub.adapters.openai_client import api_key
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

DRIVER = Path(__file__).resolve().parent / "drivers" / "lighteval_driver.py"
ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
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
    params = job.spec.params
    task = str(params.get("task") or job.spec.benchmark)
    return f"{task}|{int(_number(params, 'num_fewshot', 0))}"


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
    params, config, defaults = unit.params, unit.provider.config, unit.model.defaults
    generation: dict[str, Any] = {
        "temperature": float(_number(params, "temperature", defaults.temperature)),
        "max_new_tokens": int(_number(params, "max_tokens", defaults.max_tokens)),
    }
    top_p = _number(params, "top_p", defaults.top_p)
    if top_p is not None:
        generation["top_p"] = float(top_p)
    seed = _number(params, "seed", None)
    if seed is not None:
        generation["seed"] = int(seed)
    parameters: dict[str, Any] = {
        "model_name": f"openai/{endpoint.served_name}",
        "base_url": endpoint.url.rstrip("/"),
        "concurrent_requests": max(1, int(_number(config, "concurrent_requests", job.concurrency))),
        "api_max_retry": 1 + max(0, int(_number(config, "max_retries", 3))),
        "api_retry_sleep": float(_number(config, "retry_sleep", 1.0)),
        "max_model_length": int(_number(config, "max_model_length", 4096)),
        "timeout": float(defaults.timeout_seconds),
        "cache_dir": str(cache_dir),
        "generation_parameters": generation,
    }
    if config.get("system_prompt"):
        parameters["system_prompt"] = str(config["system_prompt"])
    return parameters


def _number(values: Mapping[str, Any], key: str, default: Any) -> Any:
    value = values.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(
            f"lighteval's `{key}` must be a number, not {value!r}",
            "fix it in the benchmark's `params` (or the provider's `config`)",
        )
    return value


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
    limit = _number(job.spec.params, "limit", None)
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


def failure(code: int, output: dict[str, Any], log: Path) -> UnitError:
    if output.get("error"):
        hint = str(output.get("hint") or "see lighteval.log")
        return UnitError(f"lighteval: {output['error']}", hint)
    return UnitError(f"lighteval exited {code}: {log_tail(log)}", "see lighteval.log")


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


class LightevalAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        if not job.environment:
            raise UnitError(
                "lighteval runs in its managed environment, but the provider lists no requirements",
                'add `requirements: ["torch==2.13.0", "lighteval[litellm]==0.13.0", '
                '"litellm<1.80", "xxhash<4"]` to the lighteval Provider',
            )
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = driver_config(job, out)
        cache = Path(config["model_parameters"]["cache_dir"])
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        shutil.rmtree(config["output_dir"], ignore_errors=True)
        (out / "lighteval_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        output_file = out / "lighteval_output.json"
        output_file.unlink(missing_ok=True)
        python = Path(job.environment) / "bin" / "python"
        cmd = [str(python), str(DRIVER), str(out / "lighteval_config.json"), str(output_file)]
        env = {**os.environ, **ENVIRONMENT}
        endpoint = job.spec.model.endpoint
        # Through the environment, never the command line; a placeholder replaces any key the
        # caller's environment holds for another service.
        env["OPENAI_API_KEY"] = (api_key(endpoint) if endpoint else None) or PLACEHOLDER_KEY
        callbacks.report_status(JobStatusUpdate(phase="running", message="lighteval"))
        started = time.monotonic()
        log = out / "lighteval.log"
        try:
            with log.open("w", encoding="utf-8") as handle:
                # cwd is the scratch cache: LiteLLM creates its (disabled) disk cache there.
                proc = subprocess.run(
                    cmd, cwd=cache, env=env, stdout=handle, stderr=subprocess.STDOUT,
                    timeout=job.timeout_seconds, check=False,
                )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise UnitError(
                f"lighteval timed out after {job.timeout_seconds:g} s",
                "lower `limit`, or raise the evaluation's execution.timeout_seconds",
            ) from None
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        output = read_output(output_file)
        if proc.returncode != 0:
            raise failure(proc.returncode, output, log)
        if not output:
            raise UnitError(f"lighteval's driver wrote no {output_file.name}: {log_tail(log)}")
        if not output.get("results"):
            raise UnitError("lighteval wrote no results file", "see lighteval.log")
        results = Path(str(output["results"]))
        if out not in results.parents:
            raise UnitError(f"lighteval's results file {results} is outside {out}")
        task = task_spec(job)
        metrics = parse_results(results, task)
        samples = output.get("samples") or {}
        count = samples.get(task, sum(v for v in samples.values() if isinstance(v, int)))
        version = (output.get("versions") or {}).get("lighteval")
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics=metrics,
            primary_metric=job.spec.primary_metric,
            samples=int(count),
            duration_seconds=time.monotonic() - started,
            framework="lighteval",
            framework_version=str(version) if version else None,
            artifacts=artifacts(out, output, results),
        )
