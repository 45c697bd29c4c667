"""`evalhub history`: an evaluation's results over time."""

from __future__ import annotations

import click

from evalhub.app.history import history as run_history
from evalhub.app.project import load_project
from evalhub.cli.commands.report_options import FORMAT_OPTION
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import out
from evalhub.core.render_history import history_json, history_markdown, history_text


@click.command()
@click.argument("evaluation")
@click.option("--since", help="Only results recorded after this commit, tag or branch.")
@FORMAT_OPTION
def history(evaluation: str, since: str | None, fmt: str) -> int:
    """An evaluation's results over time, from the ledger's git history: the aggregate and
    verdict of each, per model revision, with the published result and the MLflow run."""
    items = run_history(load_project(), evaluation, since)
    render = {"json": history_json, "markdown": history_markdown}.get(fmt, history_text)
    out(render(evaluation, items))
    return EXIT_OK
