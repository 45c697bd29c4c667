"""An adapter written for EvalHub's SDK that reports a fixed metric: `parameters.value` (default
0.75) as `fixed_score`, without calling any model. The smallest adapter that exercises the whole
contract (job.json in, status and results callbacks out), in evalhub and in EvalHub alike.
"""

from __future__ import annotations

import time

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
)


class FixedMetricAdapter(FrameworkAdapter):
    def run_benchmark_job(self, config: JobSpec, callbacks: JobCallbacks) -> JobResults:
        started = time.monotonic()
        callbacks.report_status(
            JobStatusUpdate(status=JobStatus.RUNNING, phase=JobPhase.RUNNING_EVALUATION)
        )
        value = float(config.parameters.get("value", 0.75))
        return JobResults(
            id=config.id,
            benchmark_id=config.benchmark_id,
            benchmark_index=config.benchmark_index,
            model_name=config.model.name,
            results=[EvaluationResult(metric_name="fixed_score", metric_value=value)],
            num_examples_evaluated=1,
            duration_seconds=time.monotonic() - started,
        )


def main() -> None:
    adapter = FixedMetricAdapter()
    callbacks = DefaultCallbacks.from_adapter(adapter)
    results = adapter.run_benchmark_job(adapter.job_spec, callbacks)
    callbacks.report_results(results)


if __name__ == "__main__":
    main()
