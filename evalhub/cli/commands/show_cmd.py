"""`evalhub show`: an evaluation's current ledger entry."""

from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.app.show import show as run_show
from evalhub.cli.commands.report_options import FORMAT_OPTION
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import out
from evalhub.core.render_show import show_json, show_markdown, show_text


@click.command()
@click.argument("evaluation")
@FORMAT_OPTION
def show(evaluation: str, fmt: str) -> int:
    """An evaluation's current ledger entry: scores against thresholds, gates, verdict, and
    where the evidence lives (the ledger commit, the signed result, the MLflow run)."""
    entry, commit = run_show(load_project(), evaluation)
    render = {"json": show_json, "markdown": show_markdown}.get(fmt, show_text)
    out(render(entry, commit))
    return EXIT_OK
