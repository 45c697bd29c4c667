from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.run_unit import run_unit as run
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import err


@click.command("run-unit")
@click.argument("unit", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the unit's result (JSON).",
)
@click.option(
    "--bundle",
    is_flag=True,
    help="Also print the result and the output directory as one line of stdout (for a "
    "Kubernetes pod, whose log is how they come back).",
)
def run_unit(unit: Path, out_path: Path, bundle: bool) -> int:
    """Run one unit from its spec (UNIT.json) and write its result.

    The same entrypoint runs locally, in a container and in a Kubernetes Job. A failed unit is
    a result too (status failed, with the reason); the exit code is 0 once a result is written.
    """
    result, line = run(unit, out_path, bundle)
    if result.status == "failed":
        err(f"unit failed: {result.error}")
    if line is not None:
        click.echo(line)
    return EXIT_OK
