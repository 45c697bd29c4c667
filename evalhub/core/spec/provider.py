"""Kind `Provider`: an evaluation framework, how to install it, and the benchmarks it offers."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from evalhub.core.spec.base import BenchmarkId, Metadata, Params, Strict, hint

BUILTIN_ADAPTERS = (
    "builtin", "lm-eval", "garak", "guidellm", "lighteval", "mteb", "ragas", "evalhub-sdk",
)  # fmt: skip
# An adapter written for EvalHub's SDK, run unchanged as `python -m <config.module>` in the
# provider's managed environment, which must pin the SDK.
SDK_ADAPTER = "evalhub-sdk"
SDK_REQUIREMENT = re.compile(r"^eval-hub-sdk(\[[^\]]*\])?==\S+$")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# A bring-your-own adapter is named by its import path: `package.module:ClassName`.
CLASS_PATH = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
ADAPTER_PATTERN = (
    "^(" + "|".join(a.replace("-", r"\-") for a in BUILTIN_ADAPTERS) + "|" + CLASS_PATH + ")$"
)


class Scale(Strict):
    """The range a metric's raw values lie in, used to normalise it to [0, 1]: a score is
    (value - min) / (max - min) when higher is better and (max - value) / (max - min) when
    lower is better, clipped to [0, 1]."""

    min: float = Field(default=0.0, description="The lowest value the metric can take.")
    max: float = Field(default=1.0, description="The highest value the metric can take.")

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if not self.min < self.max:
            raise ValueError(f"scale.min ({self.min}) must be below scale.max ({self.max})")
        return self


class CatalogueBenchmark(Strict):
    """A benchmark this provider can run."""

    id: BenchmarkId = Field(description="The benchmark's id (a task, probe or dataset name).")
    description: str = Field(default="", description="What it measures; not identity.")
    primary_metric: str = Field(
        min_length=1, description="The metric that scores the benchmark, e.g. exact_match."
    )
    direction: Literal["higher", "lower"] = Field(
        default="higher", description="Whether higher or lower values of the metric are better."
    )
    scale: Scale = Field(default_factory=Scale, description="The metric's range.")
    dataset: str | None = Field(
        default=None,
        description="A data file (JSONL) relative to this spec file; its content is identity.",
    )
    files: list[str] = Field(
        default_factory=list,
        description="More files or directories (task definitions, say) relative to this spec "
        "file whose content defines the benchmark; hashed into identity.",
    )
    params: Params = Field(default_factory=dict)


class Resources(Strict):
    """Compute a unit asks for when it runs in a container or a Kubernetes Job."""

    cpu: str | None = Field(
        default=None,
        pattern=r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$",
        description="CPU as a Kubernetes quantity (e.g. 2, 500m).",
        json_schema_extra=hint("write CPU as a Kubernetes quantity such as 2 or 500m"),
    )
    memory: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        description="Memory as a Kubernetes quantity (e.g. 4Gi).",
        json_schema_extra=hint("write memory as a Kubernetes quantity such as 512Mi or 4Gi"),
    )
    gpu: int = Field(default=0, ge=0, le=64, description="Number of GPUs.")


class ProviderSpec(Strict):
    description: str = Field(default="", description="What this provider is; not identity.")
    adapter: str = Field(
        pattern=ADAPTER_PATTERN,
        description="The framework adapter: one of "
        + ", ".join(BUILTIN_ADAPTERS)
        + ", or a bring-your-own class as `package.module:ClassName`.",
        json_schema_extra=hint(
            "use one of " + ", ".join(BUILTIN_ADAPTERS) + " or `package.module:ClassName`"
        ),
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        description="The framework version this provider pins (e.g. 0.4.13); identity.",
    )
    requirements: list[str] = Field(
        default_factory=list,
        description="pip requirements of the provider's managed environment; identity.",
    )
    image: str | None = Field(
        default=None,
        description="Container image for the Dagger and Kubernetes executors (pin a digest); "
        "identity.",
    )
    resources: Resources = Field(
        default_factory=Resources, description="Default compute for containerised runs."
    )
    config: Params = Field(
        default_factory=dict, description="Adapter options (e.g. a tokenizer path); identity."
    )
    benchmarks: list[CatalogueBenchmark] = Field(
        min_length=1, description="The catalogue of benchmarks this provider offers."
    )

    @model_validator(mode="after")
    def _sdk_adapter(self) -> ProviderSpec:
        if self.adapter != SDK_ADAPTER:
            return self
        module = self.config.get("module")
        if not isinstance(module, str) or not MODULE.match(module):
            raise ValueError(
                "an evalhub-sdk provider names its adapter's module as `config: {module: "
                "package.module}` (run as `python -m package.module`)"
            )
        if not any(SDK_REQUIREMENT.match(r.replace(" ", "")) for r in self.requirements):
            raise ValueError(
                "an evalhub-sdk provider's requirements pin the SDK, e.g. "
                "`eval-hub-sdk[adapter]==1.0.6`"
            )
        return self


class Provider(Strict):
    """An evaluation framework and its benchmark catalogue."""

    apiVersion: Literal["evalhub.dev/v1"]
    kind: Literal["Provider"]
    metadata: Metadata
    spec: ProviderSpec
