"""The unit of execution: what `evalhub run-unit` reads (JobSpec) and writes (JobResults).

The names follow EvalHub's adapter SDK (JobSpec, JobCallbacks, JobResults, run_benchmark_job),
so adapters written for it port with little change. Both documents are versioned JSON: the
same files cross process, container and Kubernetes Job boundaries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from evalhub.core.resolved import ResolvedUnit

JOB_FORMAT_VERSION = 1
PROGRESS_PREFIX = "evalhub-progress: "  # how run-unit reports progress on stderr


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobSpec(_Model):
    """Everything a unit needs to run, resolved. Holds secret NAMES only, never values."""

    format_version: int = JOB_FORMAT_VERSION
    evaluation: str
    unit: str = Field(description="<evaluation>/<entry>")
    fingerprint: str
    spec: ResolvedUnit
    spec_root: str = Field(description="Absolute path the unit's `files` are relative to.")
    project_root: str = Field(description="Absolute path of the repository root.")
    output_dir: str = Field(description="Where the adapter writes its raw output and artifacts.")
    environment: str | None = Field(
        default=None, description="The provider's managed environment (a virtualenv), if any."
    )
    timeout_seconds: float = Field(default=3600, gt=0)
    concurrency: int = Field(default=4, ge=1, description="Requests in flight within the unit.")


class JobResults(_Model):
    """A unit's normalised result."""

    format_version: int = JOB_FORMAT_VERSION
    fingerprint: str
    status: Literal["succeeded", "failed"]
    metrics: dict[str, float] = Field(default_factory=dict)
    primary_metric: str
    primary_value: float | None = None
    score: float | None = Field(default=None, description="primary_value normalised to [0, 1].")
    samples: int = 0
    duration_seconds: float = 0.0
    framework: str
    framework_version: str | None = None
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="Artifact name -> path relative to output_dir."
    )
    error: str | None = None
    runner: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Where the unit ran, set by a container executor: its image reference, "
        "definition key and digest (run-unit leaves it empty).",
    )


def failed_result(job: JobSpec, error: str, artifacts: dict[str, str] | None = None) -> JobResults:
    """A unit that failed, with the reason: still a result, recorded like any other."""
    return JobResults(
        fingerprint=job.fingerprint,
        status="failed",
        primary_metric=job.spec.primary_metric,
        framework=job.spec.provider.adapter,
        framework_version=job.spec.provider.version,
        error=error,
        artifacts=artifacts or {},
    )


class JobStatusUpdate(_Model):
    phase: Literal["initializing", "running", "post_processing", "completed", "failed"]
    message: str = ""
    completed: int | None = None
    total: int | None = None
