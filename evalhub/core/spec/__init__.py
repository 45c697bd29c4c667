"""The spec language: one pydantic model per kind. Their JSON Schemas live in schemas/."""

from evalhub.core.spec.base import API_VERSION, Metadata
from evalhub.core.spec.collection import BenchmarkRef, Collection, CollectionSpec
from evalhub.core.spec.evaluation import Evaluation, EvaluationSpec, Execution, Gates, RunParams
from evalhub.core.spec.model import Endpoint, Model, ModelSpec
from evalhub.core.spec.policy import Policy, PolicySpec
from evalhub.core.spec.provider import (
    BUILTIN_ADAPTERS,
    CatalogueBenchmark,
    Provider,
    ProviderSpec,
    Scale,
)

Spec = Model | Provider | Collection | Evaluation | Policy

# The kinds, in the order a reader meets them; schemas/<kind>.json is generated from each.
KINDS: dict[str, type[Model | Provider | Collection | Evaluation | Policy]] = {
    "Model": Model,
    "Provider": Provider,
    "Collection": Collection,
    "Evaluation": Evaluation,
    "Policy": Policy,
}

__all__ = [
    "API_VERSION",
    "BUILTIN_ADAPTERS",
    "KINDS",
    "BenchmarkRef",
    "CatalogueBenchmark",
    "Collection",
    "CollectionSpec",
    "Endpoint",
    "Evaluation",
    "EvaluationSpec",
    "Execution",
    "Gates",
    "Metadata",
    "Model",
    "ModelSpec",
    "Policy",
    "PolicySpec",
    "Provider",
    "ProviderSpec",
    "RunParams",
    "Scale",
    "Spec",
]
