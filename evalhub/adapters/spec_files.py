"""SpecSource over a working tree: YAML files under the project's spec directories."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from evalhub.adapters.files import digest_refs, file_digest, inside, walk_spec_files
from evalhub.adapters.yaml_source import parse_documents, read_spec_file
from evalhub.core.datasets import FileRef
from evalhub.core.errors import Diagnostic
from evalhub.core.resolve import adapter_code_key
from evalhub.core.source import SourceDocument


def display(path: Path, cwd: str | None = None) -> str:
    """A path as the user should see it: relative to the working directory (`cwd` when
    given, to ask the system once for many paths) when possible."""
    try:
        return os.path.relpath(path, cwd) if cwd else os.path.relpath(path)
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

    def _root_finder(self) -> Callable[[str], Path]:
        """The spec root a file belongs to (by its absolute path), judged by where it is
        written, not where a symbolic link points: the deepest configured root above it, else
        a directory given on the command line above it, else its own directory. The
        directories are looked at once, not once per file."""
        roots = sorted(
            (os.path.abspath(r) for r in self.roots if r.is_dir()),
            key=lambda r: -len(Path(r).parts),
        )
        given = [os.path.abspath(p) for p in self.paths or [] if p.is_dir()]

        def root_of(written: str) -> Path:
            for directory in [*roots, *given]:
                if inside(written, directory):
                    return Path(directory)
            return Path(os.path.dirname(written))

        return root_of

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
        files = walk_spec_files([t for t in targets if t.exists()], self.exclude, self.repo_root)
        self._root_for.clear()
        root_of = self._root_finder()
        real_roots: dict[Path, str] = {}
        cwd = os.getcwd()
        for file in files:
            written = os.path.abspath(file.path)
            root = root_of(written)
            directory = Path(written).parent.relative_to(root).as_posix()
            shown = display(file.path, cwd)
            if root not in real_roots:
                real_roots[root] = os.path.realpath(root)
            if not inside(file.real, real_roots[root]):
                problems.append(
                    Diagnostic(
                        shown,
                        0,
                        0,
                        "",
                        "spec file is a symbolic link leading outside the spec root",
                        "copy the file into the spec directory",
                    )
                )
                continue
            raw, unreadable = read_spec_file(file.path, shown)
            if raw is None:
                assert unreadable is not None
                problems.append(unreadable)
                continue
            docs, errors = parse_documents(shown, raw, "" if directory == "." else directory)
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

    def read_beside(self, doc: SourceDocument, name: str) -> str | None:
        root = self._root_for.get(doc.file, self.repo_root)
        path = root / doc.directory / name
        if not path.is_file() or not inside(os.path.realpath(path), os.path.realpath(root)):
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def code_digests(self, adapters: Collection[str]) -> dict[str, str]:
        """Digests of the code of bring-your-own adapters (`package.module:Class`) that live in
        the repository, keyed by core.resolve.adapter_code_key. `evalhub run-unit` imports them
        from the project root first, then the spec roots (adapters/frameworks.load_adapter):
        the same search finds the files here. What is hashed: the module's file and the
        `__init__.py` of each package above it (the code Python runs to import the class).
        Sibling modules it imports are not: name them in a benchmark's `files`. An adapter
        that is not found under the repository is an installed package; its version and
        requirements are its identity."""
        search = [self.repo_root, *self.roots]
        digests: dict[str, str] = {}
        for adapter in sorted(set(adapters)):
            for path in adapter_files(search, adapter.partition(":")[0], self.repo_root):
                relative = path.relative_to(self.repo_root.resolve()).as_posix()
                digests[adapter_code_key(adapter, relative)] = file_digest(path)
        return digests


def adapter_files(search: list[Path], module: str, repo_root: Path) -> list[Path]:
    """The files of `module` (dotted) under the first search root that holds it: its package
    `__init__.py` files from the top down, then the module itself; only files whose real
    path is inside the repository."""
    parts = module.split(".")
    repo = repo_root.resolve()
    for root in search:
        base = root.joinpath(*parts)
        found = next(
            (c for c in (base.with_suffix(".py"), base / "__init__.py") if c.is_file()), None
        )
        if found is None:
            continue
        packages = [root.joinpath(*parts[:i], "__init__.py") for i in range(1, len(parts))]
        files = [p.resolve() for p in [*packages, found] if p.is_file()]
        return [p for p in dict.fromkeys(files) if repo in p.parents]
    return []
