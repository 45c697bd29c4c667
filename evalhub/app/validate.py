"""`evalhub validate`: every problem in the specs, at once."""

from __future__ import annotations

from pathlib import Path

from evalhub.app.project import Project, require_project
from evalhub.app.specs import load_specs
from evalhub.core.validate import Validation


def validate(project: Project, paths: list[Path] | None = None) -> Validation:
    if not paths:
        require_project(project)
    return load_specs(project, project.spec_source(paths or None)).validation
