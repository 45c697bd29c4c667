"""`evalhub gate`: may the model be promoted?"""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.gate import gate as run_gate
from evalhub.app.gate import gate_model_image
from evalhub.app.project import load_project
from evalhub.cli.commands.report_options import FORMAT_OPTION, KEY_OPTION
from evalhub.cli.errors import EXIT_OK, EXIT_PENDING
from evalhub.cli.output import INSECURE_OPTION, out
from evalhub.core.errors import ConfigError
from evalhub.core.render_gate import gate_json, gate_markdown, gate_text


@click.command()
@click.option("--policy", "policies", multiple=True, help="Gate on these Policies (default: all).")
@click.option("--model", help="Only the Policies that promote this Model.")
@click.option(
    "--model-image",
    "image",
    metavar="REPOSITORY@sha256:HEX",
    help="Gate this exact model image on the results attached to it in its registry, "
    "instead of the ledger (what a deploy pipeline or admission check calls).",
)
@KEY_OPTION
@INSECURE_OPTION
@FORMAT_OPTION
def gate(
    policies: tuple[str, ...],
    model: str | None,
    image: str | None,
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

    With --model-image REPOSITORY@sha256:…, the evidence is what is attached to that image
    (its OCI referrers), not the ledger: each required evaluation needs an attached result
    that verifies, judged this image digest, is fresh, signed by an accepted key, passing and
    young enough. Without --policy, the Policies whose Model names this image are gated.
    """
    project = load_project()
    if image is not None:
        if model is not None:
            raise ConfigError(
                "give --model or --model-image, not both",
                "--model-image selects the Policies whose Model names that image",
            )
        report = gate_model_image(project, image, list(policies), list(keys) or None, insecure)
    else:
        report = run_gate(project, list(policies), model, list(keys) or None, insecure)
    render = {"json": gate_json, "markdown": gate_markdown}.get(fmt, gate_text)
    out(render(report))
    return EXIT_OK if report.ok else EXIT_PENDING
