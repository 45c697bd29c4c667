"""`evalhub mcp`: the project's tools and resources over stdio (Model Context Protocol)."""

from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.cli.errors import EXIT_OK
from evalhub.core.errors import ConfigError


@click.command()
def mcp() -> int:
    """Serve evalhub's tools and resources to an MCP client over stdio.

    Tools: validate, plan, submit_job, apply (evaluations by name), job_status, gate, verify.
    Resources: evalhub://providers, collections, evaluations, results, plan. Jobs run in this
    process through the same path as `evalhub apply` (recorded units reused).
    """
    project = load_project()
    try:
        from evalhub.cli.mcp_server import run
    except ImportError as exc:
        raise ConfigError(
            f"`evalhub mcp` needs the MCP SDK ({exc.name} is missing)",
            "pip install 'evalhub-gitops[serve]'",
        ) from None
    run(project)
    return EXIT_OK
