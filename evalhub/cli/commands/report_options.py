"""The options gate, audit, history and show share."""

from __future__ import annotations

from pathlib import Path

import click

REPORT_FORMAT = click.Choice(["text", "json", "markdown"])
FORMAT_OPTION = click.option(
    "--format", "fmt", type=REPORT_FORMAT, default="text", show_default=True
)
KEY_OPTION = click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted public key (PEM); repeat for several. Default: signing.trusted_keys.",
)
