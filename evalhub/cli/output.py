"""Where output goes: results to stdout, errors and progress to stderr."""

from __future__ import annotations

import os

import click

from evalhub.core.redact import Redactor
from evalhub.core.secrets import secret_named, secret_values


def console_redactor() -> Redactor:
    """The console prints outside text (a unit's error, a registry's answer): it masks the
    value of every variable that holds a credential (evalhub.core.redact)."""
    return Redactor(secret_values(os.environ, secret_named(os.environ)))


def out(text: str) -> None:
    click.echo(console_redactor().text(text))


def err(text: str) -> None:
    click.echo(console_redactor().text(text), err=True)


FORMAT_OPTION = click.Choice(["text", "json"])

# Shared by the commands that talk to a registry (publish, verify).
INSECURE_OPTION = click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Plain HTTP to a loopback registry (default: registry.insecure).",
)
