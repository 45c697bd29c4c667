"""Kind `Collection`: a versioned, weighted set of benchmarks with thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evalhub.core.spec.base import BenchmarkId, Metadata, Name, Params, Score, Strict


class BenchmarkRef(Strict):
    """One benchmark of a provider, as used in a collection or an evaluation."""

    provider: Name = Field(description="The Provider offering the benchmark.")
    benchmark: BenchmarkId = Field(description="The benchmark id in the provider's catalogue.")
    name: BenchmarkId | None = Field(
        default=None,
        description="Name of this entry, unique within an evaluation; defaults to `benchmark`. "
        "Gates and reports use it.",
    )
    weight: float = Field(
        default=1.0,
        ge=0.0,
        description="Weight in the aggregate score. A missing weight means 1 (every entry counts "
        "equally); 0 reports the benchmark without letting it move the aggregate.",
    )
    params: Params = Field(default_factory=dict)
    primary_metric: str | None = Field(
        default=None, min_length=1, description="Overrides the catalogue's primary metric."
    )
    threshold: Score | None = Field(
        default=None, description="Minimum normalised score of this benchmark for a pass."
    )

    @property
    def key(self) -> str:
        return self.name or self.benchmark


class CollectionSpec(Strict):
    version: int = Field(
        ge=1,
        description="The collection's version. Evaluations pin it as `name@version`; publish a "
        "changed collection under a new version.",
    )
    description: str = Field(default="", description="What the collection covers; not identity.")
    benchmarks: list[BenchmarkRef] = Field(min_length=1, description="The benchmarks.")
    threshold: Score | None = Field(
        default=None, description="Minimum weighted aggregate score of the collection."
    )
    judge: Name | None = Field(
        default=None,
        description="A Model that judges answers for LLM-judged metrics (RAGAS, say).",
    )


class Collection(Strict):
    """A versioned collection of weighted benchmarks."""

    apiVersion: Literal["evalhub.dev/v1"]
    kind: Literal["Collection"]
    metadata: Metadata
    spec: CollectionSpec
