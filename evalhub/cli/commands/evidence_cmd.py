"""`evalhub evidence`: an archive an auditor verifies without evalhub."""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.evidence import evidence as build_evidence
from evalhub.app.project import load_project
from evalhub.cli.commands.report_options import KEY_OPTION
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import INSECURE_OPTION, out
from evalhub.core.errors import ConfigError


@click.command()
@click.argument("evaluations", nargs=-1)
@click.option("--policy", "policies", multiple=True, help="Pack what these Policies require.")
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive to write (.tar.gz).",
)
@KEY_OPTION
@INSECURE_OPTION
def evidence(
    evaluations: tuple[str, ...],
    policies: tuple[str, ...],
    out_file: Path,
    keys: tuple[Path, ...],
    insecure: bool | None,
) -> int:
    """Pack the evidence of EVALUATIONS (or of what --policy requires) into one archive: the
    ledger entries and their git commits, the signed results and DSSE attestations, the
    trusted public keys, the verify and audit transcripts, and VERIFY.md with a script that
    needs only securesystemslib. The same inputs give the same archive bytes."""
    data = build_evidence(
        load_project(), list(evaluations), list(policies), list(keys) or None, insecure
    )
    try:
        out_file.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {out_file}: {exc.strerror or exc}") from exc
    out(f"Wrote {out_file} ({len(data)} bytes); verify it with evidence/VERIFY.md")
    return EXIT_OK
