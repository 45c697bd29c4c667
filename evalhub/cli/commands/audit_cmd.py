"""`evalhub audit`: check every result the ledger's git history records."""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.audit import audit as run_audit
from evalhub.app.project import load_project
from evalhub.cli.commands.report_options import FORMAT_OPTION, KEY_OPTION
from evalhub.cli.errors import EXIT_OK, EXIT_PENDING
from evalhub.cli.output import INSECURE_OPTION, out
from evalhub.core.render_audit import audit_json, audit_markdown, audit_text


@click.command()
@click.option("--since", help="Only ledger revisions after this commit, tag or branch.")
@KEY_OPTION
@INSECURE_OPTION
@FORMAT_OPTION
def audit(since: str | None, keys: tuple[Path, ...], insecure: bool | None, fmt: str) -> int:
    """Check every result the ledger's git history records.

    For each commit that changed a ledger file: the fingerprint is recomputed from the specs as
    they were at the recorded spec commit; the published result's signature is verified; the
    ledger's scores, gates and verdict must equal the attested ones; the commit must be signed
    by an allowed signer when ledger.require_signed_commits is set; and no threshold may have
    been loosened after the result (by a later result or the specs at HEAD). Signatures are
    checked against the keys and allowed signers trusted at each revision (or the --key files).

    Every commit that changed the trust settings (trusted keys, allowed signers, a Policy's
    signed_by) or loosened a Policy (an evaluation no longer required, a longer max_age) must
    be signed by an allowed signer of its parent commit, the previous trust root. Exit 0 when
    everything holds, 2 when something does not (each finding is listed), 1 on an error.
    """
    report = run_audit(load_project(), since, list(keys) or None, insecure)
    render = {"json": audit_json, "markdown": audit_markdown}.get(fmt, audit_text)
    out(render(report))
    return EXIT_OK if report.ok else EXIT_PENDING
