from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.project import load_project
from evalhub.app.schema import drifted_schemas, write_schemas
from evalhub.cli.errors import EXIT_ERROR, EXIT_OK
from evalhub.cli.output import err, out


@click.command()
@click.option("--check", is_flag=True, help="Fail if the files differ from the models.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the schemas live (default: schemas/ at the project root).",
)
def schema(check: bool, directory: Path | None) -> int:
    """Write the JSON Schemas of every kind and of evalhub.yaml (draft 2020-12)."""
    target = directory or load_project().root / "schemas"
    if check:
        drifted = drifted_schemas(target)
        if drifted:
            err(f"✗ schemas out of date in {target}: {', '.join(drifted)}")
            err("  hint: run `evalhub schema` and commit the result")
            return EXIT_ERROR
        out(f"✓ schemas in {target} match the models")
        return EXIT_OK
    changed = write_schemas(target)
    out(f"wrote {len(changed)} schema file(s) to {target}" if changed else "schemas up to date")
    return EXIT_OK
