"""The built-in dataset evaluator: JSONL rows against the Model's OpenAI-compatible endpoint, in
evalhub's own process. The manual: docs/frameworks/builtin.md."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from evalhub import __version__
from evalhub.adapters.frameworks.base import api_key, dataset_rows, output_dir, succeeded
from evalhub.adapters.openai_client import OpenAIClient, RetryPolicy
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.core.scorers import SCORERS, cites_forbidden, score_row
from evalhub.ports import JobCallbacks

DEFAULT_TEMPLATE = "{context}\n\nQuestion: {question}"
DEFAULT_TEMPLATE_NO_CONTEXT = "{question}"


def load_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    def question(number: int, row: dict[str, Any]) -> dict[str, Any]:
        if not (row.get("question") or row.get("prompt")):
            raise UnitError(f"{path}:{number}: a row needs a `question` or `prompt`")
        return row

    return dataset_rows(path, limit, question)


def render_prompt(row: dict[str, Any], template: str | None) -> str:
    question = str(row.get("question") or row.get("prompt"))
    context = row.get("context")
    if template is None:
        template = DEFAULT_TEMPLATE if context else DEFAULT_TEMPLATE_NO_CONTEXT
    return template.replace("{question}", question).replace("{context}", str(context or ""))


def requested_scorers(params: dict[str, Any], primary_metric: str) -> list[str]:
    wanted = params.get("scorers") or [params.get("scorer", primary_metric)]
    names = [str(n) for n in (wanted if isinstance(wanted, list) else [wanted])]
    if primary_metric in SCORERS and primary_metric not in names:
        names.append(primary_metric)
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise UnitError(f"unknown scorer {unknown[0]!r}", f"scorers: {', '.join(sorted(SCORERS))}")
    return names


class BuiltinAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        return asyncio.run(self._run(job, callbacks))

    async def _run(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        unit = job.spec
        params = unit.params
        scorers = requested_scorers(params, unit.primary_metric)
        if unit.dataset is None:
            raise UnitError("a builtin benchmark needs a `dataset` in the provider's catalogue")
        endpoint = unit.model.endpoint
        if endpoint is None:
            raise UnitError("the builtin evaluator needs a Model with an `endpoint`")
        key = api_key(endpoint)
        limit = params.get("limit")
        rows = load_rows(
            Path(job.spec_root) / unit.dataset, int(limit) if isinstance(limit, int) else None
        )
        config = unit.provider.config
        system = config.get("system_prompt")
        template = config.get("prompt_template")
        defaults = unit.model.defaults
        options: dict[str, Any] = {
            "temperature": params.get("temperature", defaults.temperature),
            "max_tokens": params.get("max_tokens", defaults.max_tokens),
        }
        if defaults.top_p is not None:
            options["top_p"] = defaults.top_p
        if params.get("seed") is not None:
            options["seed"] = params["seed"]
        attempts = int(params.get("max_retries", 3)) + 1  # type: ignore[arg-type]
        out = output_dir(job)
        started = time.monotonic()
        callbacks.report_status(JobStatusUpdate(phase="running", completed=0, total=len(rows)))
        async with OpenAIClient(
            endpoint, key, defaults.timeout_seconds, RetryPolicy(attempts=attempts)
        ) as client:
            try:
                models = await client.models()
            except Exception as exc:  # provenance only: the requests below decide the outcome
                models = {"error": f"{type(exc).__name__}"}
            (out / "endpoint.json").write_text(json.dumps(models, indent=2, sort_keys=True))
            limiter = asyncio.Semaphore(job.concurrency)
            done = 0

            async def one(index: int, row: dict[str, Any]) -> dict[str, Any]:
                nonlocal done
                prompt = render_prompt(row, template if isinstance(template, str) else None)
                async with limiter:
                    t0 = time.monotonic()
                    answer = await client.generate(
                        prompt, system if isinstance(system, str) else None, options
                    )
                done += 1
                callbacks.report_status(
                    JobStatusUpdate(phase="running", completed=done, total=len(rows))
                )
                return {
                    "index": index,
                    "id": row.get("id", index),
                    "prompt": prompt,
                    "answer": answer,
                    "scores": {name: score_row(name, answer, row) for name in scorers},
                    "forbidden_cited": cites_forbidden(answer, row),
                    "latency_ms": round((time.monotonic() - t0) * 1000, 1),
                }

            tasks = [asyncio.create_task(one(i, row)) for i, row in enumerate(rows)]
            try:
                samples = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        with (out / "samples.jsonl").open("w", encoding="utf-8") as handle:
            for sample in samples:
                handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
        n = len(samples)
        metrics = {
            **{name: sum(s["scores"][name] for s in samples) / n for name in scorers},
            "forbidden_cited": float(sum(bool(s["forbidden_cited"]) for s in samples)),
            "latency_ms_mean": sum(s["latency_ms"] for s in samples) / n,
            "requests": float(client.requests),
        }
        artifacts = {"samples.jsonl": "samples.jsonl", "endpoint.json": "endpoint.json"}
        return succeeded(job, "builtin", started, metrics, n, __version__, artifacts)
