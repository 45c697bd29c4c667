"""The control plane's wire models: EvalHub's REST API (`/api/v1`, server 1.0.2) as served.

Shapes follow EvalHub's OpenAPI document (evalhub-reference/openapi.yaml) field for field, so
its own client, CLI and MCP server read them unchanged. Requests are strict (an unknown field is
a 400 naming it, as in spec files); responses leave out what is unset. What evalhub adds rides
in fields EvalHub already has: a benchmark's `weight`, `test` and `additional_info` (its
fingerprint, whether its recorded result was reused), the job's `results.test`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

OverallState = Literal["pending", "running", "completed", "failed", "cancelled", "partially_failed"]
BenchmarkState = Literal["pending", "running", "completed", "failed", "cancelled"]
Phase = Literal[
    "initializing",
    "loading_data",
    "running_evaluation",
    "post_processing",
    "persisting_artifacts",
    "completed",
]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "partially_failed"})


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors and lists ----------------------------------------------------------------------------


class Error(_Response):
    """EvalHub's error body."""

    message_code: str
    message: str
    trace: str | None = None


class HRef(_Response):
    href: str


class MessageInfo(_Response):
    message: str
    message_code: str
    message_origin: Literal["server", "runtime", "adapter", "sdk"] | None = None


class Health(_Response):
    status: str
    timestamp: str
    framework_id: str = "evalhub"
    version: str


# -- jobs: the request ---------------------------------------------------------------------------


class ModelAuth(_Request):
    secret_ref: str | None = None


class ModelRef(_Request):
    name: str = Field(min_length=1, description="A Model of the repository, by name.")
    url: str | None = Field(default=None, description="Must match the Model's endpoint.")
    parameters: dict[str, JsonValue] | None = None
    auth: ModelAuth | None = None
    card_url: str | None = None  # EvalHub's MCP server sends it; informational


class PrimaryScore(BaseModel):
    metric: str | None = None
    lower_is_better: bool = False


class PassCriteria(BaseModel):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class JobPassCriteria(BaseModel):
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class BenchmarkRequest(_Request):
    id: str = Field(min_length=1)
    provider_id: str = Field(min_length=1)
    weight: float | None = Field(default=None, ge=0.0)
    primary_score: PrimaryScore | None = None
    pass_criteria: PassCriteria | None = None
    parameters: dict[str, JsonValue] | None = None
    hardware_config: dict[str, JsonValue] | None = None  # Kubernetes only; EvalHub ignores it too
    test_data_ref: dict[str, JsonValue] | None = None


class CollectionRef(_Request):
    id: str = Field(min_length=1, description="`name` (its latest version) or `name@version`.")
    benchmarks: list[BenchmarkRequest] | None = None


class ExperimentTag(BaseModel):
    key: str = Field(max_length=250)
    value: str = Field(max_length=5000)


class ExperimentConfig(_Request):
    name: str | None = None
    tags: list[ExperimentTag] | None = Field(default=None, max_length=20)
    artifact_location: str | None = None


class JobRequest(_Request):
    """POST /api/v1/evaluations/jobs: a model and benchmarks, a collection, or (evalhub's
    extension) an evaluation of the repository by name."""

    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    tags: list[str] | None = None
    model: ModelRef | None = None
    benchmarks: list[BenchmarkRequest] | None = None
    collection: CollectionRef | None = None
    evaluation: str | None = Field(
        default=None, description="evalhub: run this evaluation of the repository's specs."
    )
    pass_criteria: JobPassCriteria | None = None
    experiment: ExperimentConfig | None = None
    exports: dict[str, JsonValue] | None = None
    hardware_config: dict[str, JsonValue] | None = None
    queue: dict[str, JsonValue] | None = None
    custom: dict[str, JsonValue] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        given = [k for k in ("benchmarks", "collection", "evaluation") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "a job names exactly one of `benchmarks`, `collection` or `evaluation`"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.evaluation is None and self.model is None:
            raise ValueError("`model` is required unless the job names an `evaluation`")
        return self


# -- jobs: the resource --------------------------------------------------------------------------


class BenchmarkStatus(_Response):
    provider_id: str
    id: str
    benchmark_index: int
    status: BenchmarkState
    phase: Phase | None = None
    error_message: MessageInfo | None = None
    started_at: str | None = None
    completed_at: str | None = None


class JobStatus(_Response):
    state: OverallState
    message: MessageInfo
    benchmarks: list[BenchmarkStatus] = Field(default_factory=list)


class BenchmarkTest(_Response):
    primary_score: float | None = None
    threshold: float | None = None
    # `pass` is a Python keyword: the field is `passed`, serialised under its alias.
    passed: bool = Field(alias="pass", serialization_alias="pass")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BenchmarkResult(_Response):
    id: str
    provider_id: str
    benchmark_index: int
    metrics: dict[str, float] = Field(default_factory=dict)
    mlflow_run_id: str | None = None
    additional_info: dict[str, JsonValue] = Field(default_factory=dict)
    test: BenchmarkTest | None = None


class EvaluationTest(_Response):
    score: float | None = None
    threshold: float | None = None
    passed: bool = Field(alias="pass", serialization_alias="pass")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JobResults(_Response):
    benchmarks: list[BenchmarkResult] = Field(default_factory=list)
    mlflow_experiment_url: str | None = None
    test: EvaluationTest | None = None


class Resource(_Response):
    id: str
    tenant: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    owner: str | None = None
    mlflow_experiment_id: str | None = None


class Job(_Response):
    """An evaluation job as GET /api/v1/evaluations/jobs/{id} answers."""

    resource: Resource
    status: JobStatus
    results: JobResults | None = None
    name: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    model: ModelRef | None = None
    benchmarks: list[BenchmarkRequest] | None = None
    collection: CollectionRef | None = None
    evaluation: str | None = None
    pass_criteria: JobPassCriteria | None = None
    experiment: ExperimentConfig | None = None


class JobList(_Response):
    first: HRef
    next: HRef | None = None
    limit: int
    total_count: int
    items: list[Job]


# -- providers and collections -------------------------------------------------------------------


class BenchmarkInfo(_Response):
    id: str
    name: str
    description: str | None = None
    category: str
    metrics: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    primary_score: PrimaryScore | None = None


class Provider(_Response):
    resource: Resource
    name: str
    title: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    runtime: dict[str, JsonValue] = Field(
        default_factory=dict, description="Empty: what runs is the repository's business."
    )
    benchmarks: list[BenchmarkInfo] = Field(default_factory=list)


class ProviderList(_Response):
    first: HRef
    next: HRef | None = None
    limit: int
    total_count: int
    items: list[Provider]


class CollectionBenchmark(_Response):
    id: str
    provider_id: str
    weight: float | None = None
    primary_score: PrimaryScore | None = None
    pass_criteria: PassCriteria | None = None
    parameters: dict[str, JsonValue] = Field(default_factory=dict)


class Collection(_Response):
    resource: Resource
    name: str
    category: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    pass_criteria: PassCriteria | None = None
    benchmarks: list[CollectionBenchmark] = Field(default_factory=list)


class CollectionList(_Response):
    first: HRef
    next: HRef | None = None
    limit: int
    total_count: int
    items: list[Collection]
