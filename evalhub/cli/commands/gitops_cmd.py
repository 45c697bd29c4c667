"""`evalhub gate`, `audit`, `history` and `show`: the results ledger read back from git."""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.gitops import audit as run_audit
from evalhub.app.gitops import current_entry, ledger_history
from evalhub.app.gitops import gate as run_gate
from evalhub.app.project import load_project
from evalhub.cli.errors import EXIT_OK, EXIT_PENDING
from evalhub.cli.output import INSECURE_OPTION, out
from evalhub.core.errors import LedgerError
from evalhub.core.render_gitops import (
    audit_json,
    audit_markdown,
    audit_text,
    gate_json,
    gate_markdown,
    gate_text,
    history_json,
    history_markdown,
    history_text,
    show_json,
    show_text,
)

REPORT_FORMAT = click.Choice(["text", "json", "markdown"])
KEY_OPTION = click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted public key (PEM); repeat for several. Default: signing.trusted_keys.",
)


@click.command()
@click.option("--policy", "policies", multiple=True, help="Gate on these Policies (default: all).")
@click.option("--model", help="Only the Policies that promote this Model.")
@KEY_OPTION
@INSECURE_OPTION
@click.option("--format", "fmt", type=REPORT_FORMAT, default="text", show_default=True)
def gate(
    policies: tuple[str, ...],
    model: str | None,
    keys: tuple[Path, ...],
    insecure: bool | None,
    fmt: str,
) -> int:
    """May the model be promoted? Checks a Policy against the results ledger.

    Every evaluation the Policy requires must have a ledger entry that is fresh (recorded for
    the fingerprint of the current specs), verified (its published result signed by a trusted
    key the Policy accepts, and equal to the ledger), passing (as attested), not regressed more
    than max_regression against the previous passing entry in git history, and younger than
    the Policy's max_age. Exit 0 when every Policy holds, 2 when one fails (each reason is
    listed), 1 on an error. `--format markdown` suits a pull-request comment.
    """
    report = run_gate(load_project(), list(policies), model, list(keys) or None, insecure)
    render = {"json": gate_json, "markdown": gate_markdown}.get(fmt, gate_text)
    out(render(report))
    return EXIT_OK if report.ok else EXIT_PENDING


@click.command()
@click.option("--since", help="Only ledger revisions after this commit, tag or branch.")
@KEY_OPTION
@INSECURE_OPTION
@click.option("--format", "fmt", type=REPORT_FORMAT, default="text", show_default=True)
def audit(since: str | None, keys: tuple[Path, ...], insecure: bool | None, fmt: str) -> int:
    """Check every result the ledger's git history records.

    For each commit that changed a ledger file: the fingerprint is recomputed from the specs as
    they were at the recorded spec commit; the published result's signature is verified; the
    ledger's scores, gates and verdict must equal the attested ones; the commit must be signed
    by an allowed signer when ledger.require_signed_commits is set; and no threshold may have
    been loosened after the result (by a later result or the specs at HEAD). Exit 0 when
    everything holds, 2 when something does not (each finding is listed), 1 on an error.
    """
    report = run_audit(load_project(), since, list(keys) or None, insecure)
    render = {"json": audit_json, "markdown": audit_markdown}.get(fmt, audit_text)
    out(render(report))
    return EXIT_OK if report.ok else EXIT_PENDING


@click.command()
@click.argument("evaluation")
@click.option("--since", help="Only results recorded after this commit, tag or branch.")
@click.option("--format", "fmt", type=REPORT_FORMAT, default="text", show_default=True)
def history(evaluation: str, since: str | None, fmt: str) -> int:
    """An evaluation's results over time, from the ledger's git history: the aggregate and
    verdict of each, per model revision, with the published result and the MLflow run."""
    revisions = ledger_history(load_project(), evaluation, since)
    items = [(r.revision.commit, r.revision.time, r.entry) for r in revisions if r.entry]
    render = {"json": history_json, "markdown": history_markdown}.get(fmt, history_text)
    out(render(evaluation, items))
    return EXIT_OK


@click.command()
@click.argument("evaluation")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def show(evaluation: str, fmt: str) -> int:
    """An evaluation's current ledger entry: scores against thresholds, gates, verdict, and
    where the evidence lives (the ledger commit, the signed result, the MLflow run)."""
    project = load_project()
    entry = current_entry(project, evaluation)
    commit = None
    try:
        revisions = ledger_history(project, evaluation)
    except LedgerError:  # outside git: the file alone
        revisions = []
    for revision in reversed(revisions):
        if revision.entry == entry:
            commit = revision.revision.commit
            break
    out(show_json(entry, commit) if fmt == "json" else show_text(entry, commit))
    return EXIT_OK
