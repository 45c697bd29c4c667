"""The seams between the application and the outside world. Adapters implement these."""

from __future__ import annotations

from typing import Protocol

from evalhub.core.datasets import FileRef
from evalhub.core.errors import Diagnostic
from evalhub.core.source import SourceDocument


class SpecSource(Protocol):
    """Where spec documents come from: a working tree now, a git revision for audits later."""

    def documents(self) -> tuple[list[SourceDocument], list[Diagnostic]]:
        """Every spec document, and the problems met while reading them."""
        ...

    def digests(self, refs: list[FileRef]) -> tuple[dict[str, str], list[Diagnostic]]:
        """Content digests of the files the specs name, keyed by root-relative path."""
        ...
