from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.project import load_project
from evalhub.app.validate import validate as run_validate
from evalhub.cli.errors import EXIT_ERROR, EXIT_OK
from evalhub.cli.output import FORMAT_OPTION, out
from evalhub.core.errors import SpecError
from evalhub.core.report import validation_json, validation_text


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
def validate(paths: tuple[Path, ...], fmt: str) -> int:
    """Check spec files: syntax, schema, references, datasets and secrets.

    PATHS are spec directories or files (default: the `specs` of evalhub.yaml). Every problem
    is reported at once as file:line:column: field.path: message, with a hint.
    """
    render = validation_json if fmt == "json" else validation_text
    try:
        project = load_project()
    except SpecError as exc:  # evalhub.yaml itself is wrong: report it like any spec
        out(render(exc.diagnostics, 1))
        return EXIT_ERROR
    result = run_validate(project, list(paths))
    out(render(result.diagnostics, result.documents, result.notes))
    return EXIT_OK if result.ok else EXIT_ERROR
