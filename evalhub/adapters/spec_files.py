"""SpecSource over a working tree: YAML files under the project's spec directories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from evalhub.adapters.files import digest_refs, find_spec_files
from evalhub.adapters.yaml_source import parse_documents
from evalhub.core.datasets import FileRef
from evalhub.core.errors import Diagnostic
from evalhub.core.source import SourceDocument


def display(path: Path) -> str:
    """A path as the user should see it: relative to the working directory when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@dataclass
class WorkingTreeSpecs:
    """Spec files on disk. `roots` are the spec directories (dataset paths stay inside them);
    `paths` are what to load (default: the roots)."""

    repo_root: Path
    roots: list[Path]
    exclude: list[str]
    paths: list[Path] | None = None
    _root_for: dict[str, Path] = field(default_factory=dict, init=False)

    def _root_of(self, file: Path) -> Path:
        resolved = file.resolve()
        candidates = [r.resolve() for r in self.roots if r.is_dir()]
        inside = [r for r in candidates if r in resolved.parents]
        if inside:
            return max(inside, key=lambda r: len(r.parts))
        for given in self.paths or []:
            if given.is_dir() and given.resolve() in resolved.parents:
                return given.resolve()
        return resolved.parent

    def documents(self) -> tuple[list[SourceDocument], list[Diagnostic]]:
        targets = self.paths if self.paths is not None else self.roots
        problems: list[Diagnostic] = []
        for target in targets:
            if not target.exists():
                problems.append(
                    Diagnostic(
                        display(target),
                        0,
                        0,
                        "",
                        "no such file or directory",
                        "check the path, or the `specs:` list in evalhub.yaml",
                    )
                )
        documents: list[SourceDocument] = []
        files = find_spec_files([t for t in targets if t.exists()], self.exclude, self.repo_root)
        self._root_for.clear()
        for file in files:
            root = self._root_of(file)
            directory = file.resolve().parent.relative_to(root).as_posix()
            try:
                raw = file.read_bytes()
            except OSError as exc:
                problems.append(
                    Diagnostic(display(file), 0, 0, "", f"cannot read: {exc.strerror}", "")
                )
                continue
            docs, errors = parse_documents(
                display(file), raw, "" if directory == "." else directory
            )
            for doc in docs:
                self._root_for[doc.file] = root
            documents.extend(docs)
            problems.extend(errors)
        return documents, problems

    def digests(self, refs: list[FileRef]) -> tuple[dict[str, str], list[Diagnostic]]:
        by_root: dict[Path, list[FileRef]] = {}
        for ref in refs:
            by_root.setdefault(self._root_for.get(ref.doc.file, self.repo_root), []).append(ref)
        digests: dict[str, str] = {}
        problems: list[Diagnostic] = []
        for root, group in by_root.items():
            found, missing = digest_refs(root, group)
            digests.update(found)
            problems.extend(missing)
        return digests, problems
