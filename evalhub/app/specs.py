"""Load → validate → resolve: the first three stages, shared by every command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from evalhub.app.project import Project
from evalhub.core.datasets import file_refs
from evalhub.core.errors import Diagnostic, SpecError
from evalhub.core.provider_lock import LockCheck, check_locks, lock_file
from evalhub.core.resolve import code_name, provider_lock_key, resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.source import SourceDocument
from evalhub.core.validate import Validation, validate_documents
from evalhub.ports import SpecSource


@dataclass
class Loaded:
    validation: Validation
    digests: dict[str, str] = field(default_factory=dict)


def load_specs(
    project: Project,
    source: SpecSource,
    extra: Sequence[SourceDocument] = (),
    locks: bool = True,
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
    # `locks=False`: as if no provider had a lock (`evalhub lock`, which writes them)
    checked = provider_locks(validation, source) if locks else LockCheck({}, [], [])
    for provider, lock in checked.locks.items():
        digests[provider_lock_key(provider)] = "\n".join(lock.packages)
    validation.diagnostics = sorted(
        [*problems, *validation.diagnostics, *escaping, *missing, *checked.errors]
    )
    validation.notes = sorted(checked.notes)
    return Loaded(validation, digests)


def provider_locks(validation: Validation, source: SpecSource) -> LockCheck:
    """The committed lock of each provider with requirements, stale and missing ones said."""
    texts = {
        lock_file(located): source.read_beside(located.doc, lock_file(located).rpartition("/")[2])
        for located in validation.specs.providers.values()
        if located.spec.spec.requirements
    }
    return check_locks(validation.specs.providers, texts)


def resolved_evaluations(project: Project, source: SpecSource) -> list[ResolvedEvaluation]:
    """The resolved evaluations, or a SpecError listing every problem."""
    return resolved_with_notes(project, source)[0]


def resolved_with_notes(
    project: Project, source: SpecSource
) -> tuple[list[ResolvedEvaluation], list[Diagnostic]]:
    """The resolved evaluations and the notes worth saying (providers without a lock)."""
    loaded = load_specs(project, source)
    if not loaded.validation.ok:
        raise SpecError(loaded.validation.diagnostics)
    return resolve(loaded.validation.specs, loaded.digests), loaded.validation.notes
