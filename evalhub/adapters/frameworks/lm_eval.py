"""lm-evaluation-harness (0.4.x), run as `python -m lm_eval` in the provider's managed environment.

The Model's endpoint is reached through lm-eval's `local-completions` (api: completions) or
`local-chat-completions` (api: chat, with --apply_chat_template). Facts that matter offline:
- `tokenizer_backend` is always given explicitly: None for generate_until tasks, `huggingface`
  with the Model's local tokenizer directory for loglikelihood/multiple_choice tasks ("auto" would
  try the Hub);
- `tokenized_requests=False` (llama.cpp's server answers 500 to token ids);
- HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE are set.
Custom tasks come from the benchmark's `files:` directories. They are copied into the unit's
output directory and their relative `data_files` rewritten to absolute paths there, because
lm-eval resolves them against its working directory.
Provider `config`: `num_concurrent` (default 1), `max_retries` (default 3).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from evalhub.adapters.frameworks.process import log_tail
from evalhub.adapters.openai_client import api_key
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
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


def tokenizer_dir(job: JobSpec) -> str:
    tokenizer = job.spec.model.tokenizer
    if tokenizer is None:
        raise UnitError(
            f"{job.spec.benchmark} scores log-likelihoods, which needs the model's tokenizer",
            "set `tokenizer: {path: …}` or `{path_env: …}` on the Model",
        )
    if tokenizer.path_env:
        value = os.environ.get(tokenizer.path_env)
        if not value:
            raise UnitError(
                f"environment variable {tokenizer.path_env} (the model's tokenizer) is not set",
                "export the tokenizer directory under that name",
            )
        path = Path(value)
    else:
        path = Path(job.project_root) / str(tokenizer.path)
    if not path.is_dir():
        raise UnitError(f"tokenizer directory {path} does not exist")
    return str(path)


def command(job: JobSpec, include: list[Path], output_types: set[str], output: Path) -> list[str]:
    unit = job.spec
    endpoint = unit.model.endpoint
    if endpoint is None or endpoint.api == "embeddings":
        raise UnitError("lm-eval needs a Model with a completions or chat endpoint")
    config = unit.provider.config
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
        "num_concurrent": str(config.get("num_concurrent", 1)),
        "max_retries": str(config.get("max_retries", 3)),
        "timeout": str(int(unit.model.defaults.timeout_seconds)),
    }
    if output_types & NEEDS_TOKENIZER:
        args["tokenizer_backend"] = "huggingface"
        args["tokenizer"] = tokenizer_dir(job)
    else:
        args["tokenizer_backend"] = "None"
    python = Path(str(job.environment)) / "bin" / "python"
    cmd = [
        str(python), "-m", "lm_eval",
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
        if not job.environment:
            raise UnitError(
                "lm-eval runs in its managed environment, but the provider lists no requirements",
                'add `requirements: ["lm-eval[api]==0.4.13"]` to the lm-eval Provider',
            )
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        include, output_types = prepare_tasks(job, out / "tasks")
        output = out / "lm_eval"
        cmd = command(job, include, output_types, output)
        env = {**os.environ, **OFFLINE}
        endpoint = job.spec.model.endpoint
        key = api_key(endpoint) if endpoint is not None else None
        if key:
            env["OPENAI_API_KEY"] = key  # through the environment, never the command line
        callbacks.report_status(JobStatusUpdate(phase="running", message="lm_eval"))
        started = time.monotonic()
        (out / "command.json").write_text(json.dumps(cmd, indent=2), encoding="utf-8")
        with (out / "lm_eval.log").open("w", encoding="utf-8") as log:
            try:
                proc = subprocess.run(
                    cmd, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT,
                    timeout=job.timeout_seconds, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise UnitError(f"lm_eval timed out after {job.timeout_seconds:g} s") from None
        if proc.returncode != 0:
            tail = log_tail(out / "lm_eval.log")
            raise UnitError(f"lm_eval exited {proc.returncode}: {tail}", "see lm_eval.log")
        metrics, samples, version, results = parse_results(output, job.spec.benchmark)
        artifacts: dict[str, Any] = {"results.json": str(results.relative_to(out))}
        for sample_file in output.rglob("samples_*.jsonl"):
            artifacts[sample_file.name] = str(sample_file.relative_to(out))
        artifacts["lm_eval.log"] = "lm_eval.log"
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics=metrics,
            primary_metric=job.spec.primary_metric,
            samples=samples,
            duration_seconds=time.monotonic() - started,
            framework="lm-eval",
            framework_version=version,
            artifacts=artifacts,
        )
