"""Kind `Evaluation`: a model measured against a pinned collection and/or inline benchmarks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from evalhub.core.spec.base import Metadata, Name, Score, Strict, hint
from evalhub.core.spec.collection import BenchmarkRef
from evalhub.core.spec.provider import Resources

COLLECTION_REF = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?@[1-9][0-9]*$"


class RunParams(Strict):
    """Settings applied to every unit of the evaluation; they override the collection's."""

    limit: int | None = Field(default=None, ge=1, description="Evaluate at most this many samples.")
    num_fewshot: int | None = Field(default=None, ge=0, description="Few-shot examples per prompt.")
    seed: int | None = Field(default=None, ge=0, description="Random seed for sampling.")


class Experiment(Strict):
    """Where the runs are filed in MLflow. Not part of identity."""

    name: str | None = Field(
        default=None, min_length=1, description="MLflow experiment; defaults to evalhub/<name>."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on every run.")


class Execution(Strict):
    """Where and how the units run. Runtime only: never part of identity."""

    executor: Literal["local", "dagger", "kubernetes"] = Field(
        default="local", description="Run units as local processes, Dagger containers or Jobs."
    )
    queue: str | None = Field(default=None, description="Kueue LocalQueue for Kubernetes Jobs.")
    resources: Resources | None = Field(
        default=None, description="Overrides the providers' resources."
    )
    concurrency: int | None = Field(default=None, ge=1, le=256, description="Units at once.")
    timeout_seconds: float | None = Field(default=None, gt=0, description="Per-unit time limit.")


class Gates(Strict):
    """What a result must reach to pass. Locked into the result's attestation before it runs."""

    min_score: Score | None = Field(default=None, description="Minimum aggregate score.")
    benchmarks: dict[str, Score] = Field(
        default_factory=dict,
        description="Minimum normalised score per benchmark entry name.",
    )
    max_regression: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest allowed drop of the aggregate against the last passing result.",
    )


class EvaluationSpec(Strict):
    description: str = Field(default="", description="What this evaluation checks; not identity.")
    model: Name = Field(description="The Model under evaluation.")
    collection: str | None = Field(
        default=None,
        pattern=COLLECTION_REF,
        description="A Collection pinned to a version, as `name@version`.",
        json_schema_extra=hint("pin the collection to a version, e.g. support-quality@2"),
    )
    benchmarks: list[BenchmarkRef] = Field(
        default_factory=list, description="Benchmarks evaluated besides the collection's."
    )
    params: RunParams = Field(default_factory=RunParams)
    experiment: Experiment = Field(default_factory=Experiment)
    execution: Execution = Field(default_factory=Execution)
    gates: Gates = Field(default_factory=Gates)

    @model_validator(mode="after")
    def _has_benchmarks(self) -> EvaluationSpec:
        if self.collection is None and not self.benchmarks:
            raise ValueError("an evaluation needs a `collection` or inline `benchmarks` (or both)")
        return self


class Evaluation(Strict):
    """A model measured against benchmarks, with gates."""

    apiVersion: Literal["evalhub.dev/v1"]
    kind: Literal["Evaluation"]
    metadata: Metadata
    spec: EvaluationSpec
