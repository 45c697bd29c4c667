"""`evalhub ui`: the MLflow UI on the project's store."""

from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.app.ui import UiStart
from evalhub.app.ui import ui as run_ui
from evalhub.cli.output import err


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), help="The port (default: a free one).")
def ui(host: str, port: int | None) -> int:
    """Start the MLflow UI on the project's store, until Ctrl-C.

    Shows the runs `evalhub apply` recorded (the embedded store .evalhub/mlflow.db by default,
    with their artifacts). A project whose tracking_uri is an MLflow server needs nothing
    started: that server has its UI. Needs the full MLflow: `pip install 'evalhub-gitops[ui]'`.
    """

    def ready(start: UiStart) -> None:
        if start.url is None:
            err(f"The project records into {start.uri}: open it in a browser, it is the UI.")
        else:
            err(f"MLflow UI on {start.uri}: {start.url}  (Ctrl-C stops it)")

    return run_ui(load_project(), host, port, ready)
