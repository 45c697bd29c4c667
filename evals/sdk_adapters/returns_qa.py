"""An adapter written for EvalHub's SDK (eval-hub-sdk[adapter]) exactly as EvalHub's own adapters
are: nothing in it knows evalhub. The Provider `sdk-returns-qa` runs it unchanged
(`adapter: evalhub-sdk`); EvalHub's server runs the same file in local mode.

It asks the model behind job.json's `model.url` the returns-policy questions of
../datasets/returns_policy_qa.jsonl (the first `num_examples`) and scores an answer 1 when it
contains one of the row's `expected` strings and none of its `forbidden` ones.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from evalhub.adapter import (
    DefaultCallbacks,
    EvaluationResult,
    FrameworkAdapter,
    JobCallbacks,
    JobPhase,
    JobResults,
    JobSpec,
    JobStatus,
    JobStatusUpdate,
    resolve_model_credentials,
)

DATASET = Path(__file__).resolve().parent.parent / "datasets" / "returns_policy_qa.jsonl"
SYSTEM = "You are a customer-support assistant. Answer using only the policy excerpt given."


def score(answer: str, row: dict) -> float:
    text = answer.lower()
    if any(bad.lower() in text for bad in row.get("forbidden", [])):
        return 0.0
    return 1.0 if any(good.lower() in text for good in row["expected"]) else 0.0


class ReturnsQaAdapter(FrameworkAdapter):
    def run_benchmark_job(self, config: JobSpec, callbacks: JobCallbacks) -> JobResults:
        started = time.monotonic()
        callbacks.report_status(
            JobStatusUpdate(status=JobStatus.RUNNING, phase=JobPhase.LOADING_DATA)
        )
        rows = [json.loads(line) for line in DATASET.read_text().splitlines() if line.strip()]
        rows = rows[: config.num_examples] if config.num_examples else rows
        headers = {}
        key = resolve_model_credentials().api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        callbacks.report_status(
            JobStatusUpdate(status=JobStatus.RUNNING, phase=JobPhase.RUNNING_EVALUATION)
        )
        scores, samples = [], []
        max_tokens = int(config.parameters.get("max_tokens", 64))
        with httpx.Client(base_url=config.model.url.rstrip("/"), timeout=120) as client:
            for row in rows:
                response = client.post(
                    "/chat/completions",
                    headers=headers,
                    json={
                        "model": config.model.name,
                        "messages": [
                            {"role": "system", "content": SYSTEM},
                            {
                                "role": "user",
                                "content": f"Policy: {row['context']}\n\n{row['question']}",
                            },
                        ],
                        "temperature": 0,
                        "max_tokens": max_tokens,
                    },
                )
                response.raise_for_status()
                answer = response.json()["choices"][0]["message"]["content"] or ""
                scores.append(score(answer, row))
                samples.append({"id": row["id"], "answer": answer, "score": scores[-1]})
        out = self.local_jobs_base_path or Path.cwd()
        (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        callbacks.report_status(
            JobStatusUpdate(status=JobStatus.RUNNING, phase=JobPhase.POST_PROCESSING)
        )
        value = sum(scores) / len(scores)
        return JobResults(
            id=config.id,
            benchmark_id=config.benchmark_id,
            benchmark_index=config.benchmark_index,
            model_name=config.model.name,
            results=[
                EvaluationResult(
                    metric_name="contains", metric_value=value, num_samples=len(scores)
                )
            ],
            num_examples_evaluated=len(scores),
            duration_seconds=time.monotonic() - started,
        )


def main() -> None:
    adapter = ReturnsQaAdapter()  # reads EVALHUB_JOB_SPEC_PATH
    callbacks = DefaultCallbacks.from_adapter(adapter)
    results = adapter.run_benchmark_job(adapter.job_spec, callbacks)
    callbacks.report_results(results)


if __name__ == "__main__":
    main()
