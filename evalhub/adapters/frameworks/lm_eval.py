"""lm-evaluation-harness (0.4.x), run as `python -m lm_eval` in the provider's managed environment.
The manual: docs/frameworks/lm-eval.md."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from evalhub.adapters.frameworks.base import (
    api_key,
    output_dir,
    python,
    succeeded,
    tokenizer_dir,
    write_json,
)
from evalhub.adapters.frameworks.runner import Driver, driver_environment, run_driver
from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

REQUIREMENTS = '["lm-eval[api]==0.4.13"]'
NEEDS_TOKENIZER = {"multiple_choice", "loglikelihood", "loglikelihood_rolling"}


def _yaml() -> YAML:
    yaml = YAML(typ="rt")  # keeps lm-eval's own tags (!function) and comments
    yaml.preserve_quotes = True
    return yaml


def prepare_tasks(job: JobSpec, target: Path) -> tuple[list[Path], set[str]]:
    """Copy the benchmark's task directories; make data_files absolute. Returns the include
    paths and the output types of the tasks found."""
    include: list[Path] = []
    output_types: set[str] = set()
    yaml = _yaml()
    for relative in job.spec.files:
        source = Path(job.spec_root) / relative
        if not source.is_dir():
            continue
        copy = target / relative.replace("/", "__")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy)
        include.append(copy)
        for task_file in sorted(copy.rglob("*.yaml")):
            data = yaml.load(task_file.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                continue
            output_types.add(str(data.get("output_type", "generate_until")))
            files = (data.get("dataset_kwargs") or {}).get("data_files")
            if isinstance(files, dict):
                for split, name in list(files.items()):
                    if isinstance(name, str) and not Path(name).is_absolute():
                        files[split] = str((task_file.parent / name).resolve())
                with task_file.open("w", encoding="utf-8") as handle:
                    yaml.dump(data, handle)
    return include, output_types


def command(job: JobSpec, include: list[Path], output_types: set[str], output: Path) -> list[str]:
    unit = job.spec
    endpoint = unit.model.endpoint
    if endpoint is None or endpoint.api == "embeddings":
        raise UnitError("lm-eval needs a Model with a completions or chat endpoint")
    config = Settings.config(job, "lm-eval")
    chat = endpoint.api == "chat"
    if chat and output_types & NEEDS_TOKENIZER:
        raise UnitError(
            f"{unit.benchmark} scores log-likelihoods, which chat endpoints cannot",
            "evaluate it on a Model with `api: completions`",
        )
    args = {
        "model": endpoint.served_name,
        "base_url": endpoint.url.rstrip("/") + ("/chat/completions" if chat else "/completions"),
        "tokenized_requests": "False",
        "num_concurrent": str(config.raw("num_concurrent", 1)),
        "max_retries": str(config.raw("max_retries", 3)),
        "timeout": str(int(unit.model.defaults.timeout_seconds)),
    }
    if output_types & NEEDS_TOKENIZER:
        args["tokenizer_backend"] = "huggingface"
        args["tokenizer"] = tokenizer_dir(
            job, f"{unit.benchmark} scores log-likelihoods, which needs the model's tokenizer"
        )
    else:
        args["tokenizer_backend"] = "None"
    cmd = [
        str(python(job, "lm-eval", REQUIREMENTS)), "-m", "lm_eval",
        "--model", "local-chat-completions" if chat else "local-completions",
        "--model_args", ",".join(f"{k}={v}" for k, v in args.items()),
        "--tasks", unit.benchmark,
        "--output_path", str(output),
        "--log_samples",
    ]  # fmt: skip
    for path in include:
        cmd += ["--include_path", str(path)]
    params = unit.params
    if chat:
        cmd.append("--apply_chat_template")
    if params.get("limit") is not None:
        cmd += ["--limit", str(params["limit"])]
    if params.get("num_fewshot") is not None:
        cmd += ["--num_fewshot", str(params["num_fewshot"])]
    if params.get("seed") is not None:
        cmd += ["--seed", str(params["seed"])]
    return cmd


def parse_results(output: Path, task: str) -> tuple[dict[str, float], int, str | None, Path]:
    found = sorted(output.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UnitError(f"lm-eval wrote no results_*.json under {output}")
    path = found[-1]
    data = json.loads(path.read_text(encoding="utf-8"))
    results = data.get("results", {}).get(task)
    if not isinstance(results, dict):
        raise UnitError(f"lm-eval's results have no task {task!r} ({path.name})")
    metrics: dict[str, float] = {}
    for key, value in results.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # "alias", and stderr reported as "N/A"
        name, _, filt = key.partition(",")
        metrics[name if filt in ("", "none") else key] = float(value)
    samples = data.get("n-samples", {}).get(task, {})
    count = int(samples.get("effective", samples.get("original", 0)) or 0)
    return metrics, count, data.get("lm_eval_version"), path


class LmEvalAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        python(job, "lm-eval", REQUIREMENTS)
        out = output_dir(job)
        include, output_types = prepare_tasks(job, out / "tasks")
        output = out / "lm_eval"
        cmd = command(job, include, output_types, output)
        endpoint = job.spec.model.endpoint
        key = api_key(endpoint) if endpoint is not None else None
        # the key through the environment, never the command line
        env = driver_environment(job, {"OPENAI_API_KEY": key} if key else {})
        callbacks.report_status(JobStatusUpdate(phase="running", message="lm_eval"))
        started = time.monotonic()
        write_json(out / "command.json", cmd)
        run = run_driver(Driver("lm_eval", cmd, out, env, out / "lm_eval.log", job.timeout_seconds))
        if run.returncode != 0:
            raise run.failure()
        metrics, samples, version, results = parse_results(output, job.spec.benchmark)
        artifacts: dict[str, Any] = {"results.json": str(results.relative_to(out))}
        for sample_file in output.rglob("samples_*.jsonl"):
            artifacts[sample_file.name] = str(sample_file.relative_to(out))
        artifacts["lm_eval.log"] = "lm_eval.log"
        return succeeded(job, "lm-eval", started, metrics, samples, version, artifacts)
