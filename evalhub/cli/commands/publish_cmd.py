from __future__ import annotations

import json

import click

from evalhub.app.project import load_project
from evalhub.app.publish import copy_results
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import FORMAT_OPTION, INSECURE_OPTION, out


@click.command()
@click.argument("tags", nargs=-1)
@click.option(
    "--to",
    "destination",
    required=True,
    help="Where to copy the results: oci://HOST[:PORT]/REPOSITORY or oci-layout:DIR.",
)
@click.option(
    "--from",
    "source",
    help="Where they are (default: the project's layout, oci-layout:.evalhub/oci).",
)
@INSECURE_OPTION
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
def publish(
    tags: tuple[str, ...], destination: str, source: str | None, insecure: bool | None, fmt: str
) -> int:
    """Copy published results and their attestations to another OCI target.

    Every result in the layout (or only TAGS) is copied byte for byte, so its digest, the
    identity its attestation and the ledger cite, is the same in the destination.
    """
    copied = copy_results(load_project(), destination, source, list(tags) or None, insecure)
    if fmt == "json":
        rows = [
            {"tag": c.tag, "digest": c.digest, "attestations": list(c.referrers)} for c in copied
        ]
        out(
            json.dumps({"format_version": 1, "destination": destination, "results": rows}, indent=2)
        )
        return EXIT_OK
    for c in copied:
        out(f"copied {c.tag}@{c.digest} with {len(c.referrers)} attestation(s)")
    out(f"{len(copied)} result(s) copied to {destination}")
    return EXIT_OK
