"""Resolved evaluations: references followed, defaults applied, dataset digests attached.

These frozen objects are what identity, plans and runs are computed from; a unit's JSON is
what `evalhub run-unit` reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from evalhub.core.spec.base import Strict
from evalhub.core.spec.evaluation import Execution, Experiment, Gates
from evalhub.core.spec.model import Endpoint, LocalModel, RequestDefaults, Tokenizer
from evalhub.core.spec.provider import Resources, Scale


class ResolvedModel(Strict):
    name: str
    type: Literal["generative", "embedding"]
    endpoint: Endpoint | None
    local: LocalModel | None
    revision: str | None
    image: str | None = None  # HOST[:PORT]/REPOSITORY[:TAG]@sha256:HEX
    defaults: RequestDefaults
    tokenizer: Tokenizer | None = None


class ResolvedProvider(Strict):
    name: str
    adapter: str
    version: str | None
    requirements: tuple[str, ...]
    image: str | None
    resources: Resources
    config: dict[str, JsonValue]
    code: dict[str, str] = Field(
        default_factory=dict,
        description="A bring-your-own adapter's files in the repository (path relative to the "
        "repository root -> digest); empty for built-in adapters and installed packages.",
    )
    lock: tuple[str, ...] = Field(
        default=(),
        description="The provider's committed lock (`name==version` of every package of its "
        "managed environment, core/provider_lock.py); empty when it has none.",
    )


class ResolvedUnit(Strict):
    """One benchmark of one provider against one model with one parameter set."""

    key: str = Field(description="The entry's name within its evaluation.")
    model: ResolvedModel
    provider: ResolvedProvider
    benchmark: str
    params: dict[str, JsonValue]
    primary_metric: str
    direction: Literal["higher", "lower"]
    scale: Scale
    files: dict[str, str] = Field(description="Root-relative path -> content digest.")
    dataset: str | None = Field(default=None, description="The data file among `files`.")
    judge: ResolvedModel | None = None
    # Aggregation: part of the evaluation's identity, not the unit's.
    weight: float
    threshold: float | None


class ResolvedEvaluation(Strict):
    name: str
    description: str
    source: str = Field(description="The spec file defining the evaluation.")
    model: ResolvedModel
    collection: str | None
    collection_threshold: float | None
    units: tuple[ResolvedUnit, ...]
    gates: Gates
    execution: Execution
    experiment: Experiment
    labels: dict[str, str]
