"""`evalhub serve`: EvalHub's REST API (`/api/v1` subset) over this project."""

from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.app.serve import ServeOptions
from evalhub.app.serve import serve as serve_project
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import err


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def serve(host: str, port: int) -> int:
    """Serve EvalHub's REST API over the project, for EvalHub's client, CLI and MCP server.

    Submitted jobs run through the same plan, apply lock, recorder and publishing as
    `evalhub apply`: recorded units are reused, never re-run. Providers and collections are
    read from the specs; changing them takes a pull request. A non-loopback --host needs the
    tokens of `serve:` in evalhub.yaml. OpenAPI at /openapi.json.
    """
    project = load_project()

    def ready() -> None:
        err(f"evalhub serve: http://{host}:{port}/api/v1 over {project.root} (Ctrl-C stops)")

    serve_project(project, ServeOptions(host, port), ready)
    return EXIT_OK
