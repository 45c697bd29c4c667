"""Load → validate → resolve: the first three stages, shared by every command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from evalhub.app.project import Project
from evalhub.core.datasets import file_refs
from evalhub.core.errors import SpecError
from evalhub.core.resolve import code_name, resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.source import SourceDocument
from evalhub.core.validate import Validation, validate_documents
from evalhub.ports import SpecSource


@dataclass
class Loaded:
    validation: Validation
    digests: dict[str, str] = field(default_factory=dict)


def load_specs(
    project: Project, source: SpecSource, extra: Sequence[SourceDocument] = ()
) -> Loaded:
    """Read and validate every spec and the files they name, with `extra` documents (a job
    submitted to `evalhub serve`) validated beside them. Problems are collected, not raised,
    so a user sees all of them at once."""
    documents, problems = source.documents()
    documents = [*documents, *extra]
    validation = validate_documents(documents, project.trusted_key_names(), complete=not problems)
    refs, escaping = file_refs(validation.specs)
    digests, missing = source.digests(refs)
    named = (code_name(p.spec.spec) for p in validation.specs.providers.values())
    digests.update(source.code_digests({name for name in named if name}))
    validation.diagnostics = sorted([*problems, *validation.diagnostics, *escaping, *missing])
    return Loaded(validation, digests)


def resolved_evaluations(project: Project, source: SpecSource) -> list[ResolvedEvaluation]:
    """The resolved evaluations, or a SpecError listing every problem."""
    loaded = load_specs(project, source)
    if not loaded.validation.ok:
        raise SpecError(loaded.validation.diagnostics)
    return resolve(loaded.validation.specs, loaded.digests)
