"""The validated specs of a repository, each with the document it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from evalhub.core.source import SourceDocument
from evalhub.core.spec import Collection, Evaluation, Model, Policy, Provider

T = TypeVar("T")


@dataclass(frozen=True)
class Located(Generic[T]):
    spec: T
    doc: SourceDocument


@dataclass
class SpecSet:
    models: dict[str, Located[Model]] = field(default_factory=dict)
    providers: dict[str, Located[Provider]] = field(default_factory=dict)
    collections: dict[tuple[str, int], Located[Collection]] = field(default_factory=dict)
    evaluations: dict[str, Located[Evaluation]] = field(default_factory=dict)
    policies: dict[str, Located[Policy]] = field(default_factory=dict)
    # (kind, name) of documents that failed validation: references to them are not reported
    # again as missing.
    invalid: set[tuple[str, str]] = field(default_factory=set)

    def broken(self, kind: str, name: str) -> bool:
        return (kind, name) in self.invalid

    def collection_versions(self, name: str) -> list[int]:
        return sorted(v for (n, v) in self.collections if n == name)

    def __len__(self) -> int:
        tables: tuple[dict[Any, Any], ...] = (
            self.models,
            self.providers,
            self.collections,
            self.evaluations,
            self.policies,
        )
        return sum(len(t) for t in tables)
