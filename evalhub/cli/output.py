"""Where output goes: results to stdout, errors and progress to stderr."""

from __future__ import annotations

import click


def out(text: str) -> None:
    click.echo(text)


def err(text: str) -> None:
    click.echo(text, err=True)


FORMAT_OPTION = click.Choice(["text", "json"])

# Shared by the commands that talk to a registry (publish, verify).
INSECURE_OPTION = click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Plain HTTP to a loopback registry (default: registry.insecure).",
)
