"""SpecSource over a working tree: YAML files under the project's spec directories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from evalhub.adapters.files import digest_refs, find_spec_files
from evalhub.adapters.yaml_source import parse_documents, read_spec_file
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
    # Where each root was configured (file, line, column, field), to point at a missing one.
    origins: dict[Path, tuple[str, int, int, str]] = field(default_factory=dict)
    _root_for: dict[str, Path] = field(default_factory=dict, init=False)

    @staticmethod
    def _inside(file: Path, root: Path) -> bool:
        """Whether the file, symbolic links followed, is still inside the root."""
        real, real_root = file.resolve(), root.resolve()
        return real_root in real.parents

    def _root_of(self, file: Path) -> Path:
        """The spec root a file belongs to, judged by where it is written (not where a
        symbolic link points)."""
        written = Path(os.path.abspath(file))
        candidates = [Path(os.path.abspath(r)) for r in self.roots if r.is_dir()]
        inside = [r for r in candidates if r in written.parents]
        if inside:
            return max(inside, key=lambda r: len(r.parts))
        for given in self.paths or []:
            if given.is_dir() and Path(os.path.abspath(given)) in written.parents:
                return Path(os.path.abspath(given))
        return written.parent

    def documents(self) -> tuple[list[SourceDocument], list[Diagnostic]]:
        targets = self.paths if self.paths is not None else self.roots
        problems: list[Diagnostic] = []
        for target in targets:
            if target.exists():
                continue
            if target in self.origins and self.paths is None:
                origin, line, column, where = self.origins[target]
                problems.append(
                    Diagnostic(
                        origin,
                        line,
                        column,
                        where,
                        f"spec directory {display(target)!r} does not exist",
                        "fix the path (relative to the repository root) or create it",
                    )
                )
            else:
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
            directory = Path(os.path.abspath(file)).parent.relative_to(root).as_posix()
            if not self._inside(file, root):
                problems.append(
                    Diagnostic(
                        display(file),
                        0,
                        0,
                        "",
                        "spec file is a symbolic link leading outside the spec root",
                        "copy the file into the spec directory",
                    )
                )
                continue
            raw, unreadable = read_spec_file(file, display(file))
            if raw is None:
                assert unreadable is not None
                problems.append(unreadable)
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
