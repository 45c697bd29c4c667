from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.init import init_project
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import out


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> int:
    """Start a project: evalhub.yaml, an example spec layout and a .gitignore entry.

    Existing files are never overwritten.
    """
    result = init_project(directory)
    for path in result.written:
        out(f"  wrote  {path}")
    for path in result.kept:
        out(f"  kept   {path} (already there, not overwritten)")
    where = "the current directory" if directory == Path(".") else str(directory)
    if result.written:
        out(
            f"Initialised an evalhub project in {where}: wrote {len(result.written)} file(s), "
            f"kept {len(result.kept)}."
        )
    else:
        out(f"Nothing to write: {where} holds every file already ({len(result.kept)} kept).")
    out("Next: `evalhub validate`, then `evalhub plan`.")
    return EXIT_OK
