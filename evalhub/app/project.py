"""Finding the project (the directory holding evalhub.yaml) and reading its settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalhub.app.compose import WorkingTreeSpecs, display, parse_documents, read_spec_file
from evalhub.core.errors import ConfigError, SpecError
from evalhub.core.project import PROJECT_FILE, STATE_DIR, ProjectConfig
from evalhub.core.source import SourceDocument
from evalhub.core.validate import parse_model


@dataclass(frozen=True)
class Project:
    root: Path
    config: ProjectConfig
    config_file: Path | None  # None: no evalhub.yaml, embedded defaults
    config_doc: SourceDocument | None = None  # where each setting was written

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def spec_source(self, paths: list[Path] | None = None) -> WorkingTreeSpecs:
        roots = [self.root / p for p in self.config.specs]
        origins = {}
        if self.config_doc is not None:
            for i, root in enumerate(roots):
                line, column = self.config_doc.position(("specs", i))
                origins[root] = (self.config_doc.file, line, column, f"specs[{i}]")
        return WorkingTreeSpecs(self.root, roots, list(self.config.exclude), paths, origins)

    def trusted_key_names(self) -> frozenset[str]:
        return frozenset(k.name for k in self.config.signing.trusted_keys)


def require_project(project: Project) -> None:
    """Refuse to work where there is no project at all (no evalhub.yaml here or above, no spec
    directory): say how to start one rather than that `evals` is missing."""
    if project.config_file is not None:
        return
    if any((project.root / p).exists() for p in project.config.specs):
        return  # specs in the default place: the embedded defaults apply
    raise ConfigError(
        f"no evalhub project in {project.root}: no {PROJECT_FILE} here or in a parent "
        f"directory, and no {', '.join(project.config.specs)}/",
        "run `evalhub init` to start one here (it writes evalhub.yaml and example specs), "
        "or run evalhub from inside a project",
    )


def find_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return directory
        if candidate.exists() or candidate.is_symlink():
            # A directory (or a dangling link) where the settings belong: skipping it would
            # run with the defaults, or with a parent project's settings, without a word.
            raise ConfigError(
                f"{display(candidate)} is not a file",
                f"{PROJECT_FILE} holds the project's settings as YAML; replace it with a file",
            )
    return None


def load_project(start: Path | None = None) -> Project:
    """The project around `start` (default: the working directory). Without an evalhub.yaml
    the embedded defaults apply, rooted at `start`."""
    start = (start or Path.cwd()).resolve()
    root = find_root(start)
    if root is None:
        return Project(start, ProjectConfig(), None)
    file = root / PROJECT_FILE
    raw, unreadable = read_spec_file(file, display(file))
    if raw is None:
        assert unreadable is not None
        raise SpecError([unreadable])
    docs, problems = parse_documents(display(file), raw)
    if not docs and all(p.message == "file holds no documents" for p in problems):
        return Project(root, ProjectConfig(), file)  # empty or only comments: the defaults
    if len(docs) > 1:
        raise ConfigError(f"{display(file)} holds {len(docs)} documents; it must hold one")
    config = None
    if docs and not problems:
        config, problems = parse_model(docs[0], ProjectConfig, "project")
    if problems or config is None:
        raise SpecError(problems)
    return Project(root, config, file, docs[0])
