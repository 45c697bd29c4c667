"""`evalhub store`: maintenance of the project's MLflow store."""

from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.app.state import index_store
from evalhub.cli.output import err


@click.group()
def store() -> None:
    """Maintain the MLflow store the project records into."""


@store.command("index")
def index() -> int:
    """Make runs recorded by an older evalhub findable in bulk, once after upgrading.

    evalhub logs every unit run's unit input (its fingerprint as an MLflow run input), by
    which a tracking server finds the runs of hundreds of changed units in one search. Runs
    recorded before then are found one fingerprint at a time until they are indexed: this
    logs their unit input. Safe to stop and run again; a no-op when nothing is left.
    """
    project = load_project()

    def progress(done: int, total: int) -> None:
        if done == total or done % 1000 == 0:
            err(f"indexed {done}/{total} runs")

    result = index_store(project, progress)
    err(f"{result.uri}: {result.indexed} runs indexed; every unit run is found in bulk now")
    return 0
