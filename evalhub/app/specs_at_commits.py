"""The specs as they were at a commit: `git archive` of it, loaded like a working tree. Audit
recomputes each recorded fingerprint from the specs at the recorded spec commit."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evalhub.adapters.git import extract_tree, show_prefix
from evalhub.app.project import Project, load_project
from evalhub.app.specs import Loaded, load_specs
from evalhub.core.errors import EvalhubError, SpecError
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.spec import Policy


class SpecsAtCommits:
    """The specs at any commit, each commit extracted and loaded once."""

    def __init__(self, project: Project, workdir: Path) -> None:
        self.project = project
        self.workdir = workdir
        self.prefix = show_prefix(project.root)  # the project may live below the git root
        self._loaded: dict[str, tuple[Project, Loaded] | str] = {}
        self._cache: dict[str, dict[str, ResolvedEvaluation] | str] = {}

    def at(self, commit: str) -> dict[str, ResolvedEvaluation] | str:
        """The evaluations at `commit`, or why they cannot be read."""
        if commit not in self._cache:
            self._cache[commit] = self._resolve(commit)
        return self._cache[commit]

    def policies(self, commit: str) -> dict[str, Policy] | str:
        """The Policies at `commit` that validate, or why the specs cannot be read."""
        loaded = self._load(commit)
        if isinstance(loaded, str):
            return loaded
        return {n: located.spec for n, located in loaded[1].validation.specs.policies.items()}

    def _resolve(self, commit: str) -> dict[str, ResolvedEvaluation] | str:
        loaded = self._load(commit)
        if isinstance(loaded, str):
            return loaded
        validation = loaded[1].validation
        if not validation.ok:
            first = validation.diagnostics[0] if validation.diagnostics else None
            detail = f": {first.message}" if first else ""
            count = len(validation.diagnostics)
            return f"the specs at {commit[:12]} do not validate ({count} errors{detail})"
        try:
            evaluations = resolve(validation.specs, loaded[1].digests)
        except EvalhubError as exc:
            return exc.message
        return {e.name: e for e in evaluations}

    def _load(self, commit: str) -> tuple[Project, Loaded] | str:
        if commit not in self._loaded:
            self._loaded[commit] = self._extract(commit)
        return self._loaded[commit]

    def _extract(self, commit: str) -> tuple[Project, Loaded] | str:
        tree = self.workdir / commit
        try:
            extract_tree(self.project.root, commit, tree)
            root = tree / self.prefix
            project = load_project(root) if (root / "evalhub.yaml").is_file() else None
            if project is None:
                project = Project(root, self.project.config, None)
            return project, load_specs(project, project.spec_source())
        except SpecError as exc:
            first = exc.diagnostics[0] if exc.diagnostics else None
            detail = f": {first.message}" if first else ""
            count = len(exc.diagnostics)
            return f"the specs at {commit[:12]} do not validate ({count} errors{detail})"
        except EvalhubError as exc:
            return exc.message

    def source_of(self, commit: str, evaluation: ResolvedEvaluation) -> str:
        """The evaluation's spec file relative to the project root at that commit."""
        root = (self.workdir / commit / self.prefix).resolve()
        try:
            return Path(evaluation.source).resolve().relative_to(root).as_posix()
        except ValueError:
            return evaluation.source


@contextmanager
def specs_at_commits(project: Project) -> Iterator[SpecsAtCommits]:
    workdir = Path(tempfile.mkdtemp(prefix="evalhub-audit-"))
    try:
        yield SpecsAtCommits(project, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
