"""`evalhub show`: an evaluation's current ledger entry."""

from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.app.show import show as run_show
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import out
from evalhub.core.render_show import show_json, show_text


@click.command()
@click.argument("evaluation")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def show(evaluation: str, fmt: str) -> int:
    """An evaluation's current ledger entry: scores against thresholds, gates, verdict, and
    where the evidence lives (the ledger commit, the signed result, the MLflow run)."""
    entry, commit = run_show(load_project(), evaluation)
    out(show_json(entry, commit) if fmt == "json" else show_text(entry, commit))
    return EXIT_OK
