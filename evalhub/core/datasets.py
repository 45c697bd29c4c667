"""The local files specs name (datasets, task definitions): where they are, and the rules.

Paths are relative to the spec file that names them and may not leave the spec root. Checking
that they exist and hashing their bytes is I/O, done by an adapter over the refs listed here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from evalhub.core.diagnose import Diagnoser
from evalhub.core.errors import Diagnostic
from evalhub.core.source import Path, SourceDocument
from evalhub.core.specset import SpecSet


@dataclass(frozen=True)
class FileRef:
    """A local file or directory named by a spec."""

    doc: SourceDocument
    field: Path  # where the spec names it
    written: str  # as written in the spec
    path: str  # normalised, relative to the spec root (posix)

    def diagnostic(self, message: str, hint: str) -> Diagnostic:
        return Diagnoser(self.doc).at(self.field, message, hint)


def normalise(directory: str, written: str) -> str | None:
    """The root-relative path of `written` (relative to `directory`), or None if it escapes."""
    if written.startswith("/") or "\\" in written or (len(written) > 1 and written[1] == ":"):
        return None
    joined = posixpath.normpath(posixpath.join(directory or ".", written))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def file_refs(specs: SpecSet) -> tuple[list[FileRef], list[Diagnostic]]:
    """Every local path the specs name, or a diagnostic for each path that escapes the root."""
    refs: list[FileRef] = []
    problems: list[Diagnostic] = []
    for where, written in _named_paths(specs):
        doc, field = where
        path = normalise(doc.directory, written)
        if path is None:
            problems.append(
                Diagnoser(doc).at(
                    field,
                    f"path {written!r} leaves the spec root",
                    "keep datasets inside the spec directory and write the path relative to "
                    "this file (e.g. ../datasets/faq.jsonl)",
                )
            )
        else:
            refs.append(FileRef(doc, field, written, path))
    return refs, problems


def _named_paths(specs: SpecSet) -> Iterator[tuple[tuple[SourceDocument, Path], str]]:
    for located in specs.providers.values():
        for i, bench in enumerate(located.spec.spec.benchmarks):
            base: Path = ("spec", "benchmarks", i)
            if bench.dataset is not None:
                yield (located.doc, (*base, "dataset")), bench.dataset
            for j, extra in enumerate(bench.files):
                yield (located.doc, (*base, "files", j)), extra
    for model in specs.models.values():
        local = model.spec.spec.local
        if local is not None and local.path is not None:
            yield (model.doc, ("spec", "local", "path")), local.path
