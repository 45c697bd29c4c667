"""`evalhub report`: the results at a glance, as one offline HTML page or as markdown."""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.project import load_project
from evalhub.app.report import report as build_report
from evalhub.cli.commands.report_options import KEY_OPTION
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import INSECURE_OPTION, out
from evalhub.core.errors import ConfigError
from evalhub.core.render_report import report_html, report_markdown
from evalhub.core.report_data import report_json

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


@click.command()
@click.argument("evaluations", nargs=-1)
@click.option("--policy", "policies", multiple=True, help="Report what these Policies require.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Write {HTML_FILE} and {MARKDOWN_FILE} into this directory (default: print).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown", "json"]),
    default="markdown",
    show_default=True,
    help="What to print when --out is not given.",
)
@click.option("--no-store", is_flag=True, help="Do not read failed units from the MLflow store.")
@KEY_OPTION
@INSECURE_OPTION
def report(
    evaluations: tuple[str, ...],
    policies: tuple[str, ...],
    out_dir: Path | None,
    fmt: str,
    no_store: bool,
    keys: tuple[Path, ...],
    insecure: bool | None,
) -> int:
    """The results at a glance: of EVALUATIONS, or what --policy requires, else of every
    evaluation. Verdict and why, scores against thresholds with a chart, the trend over the
    ledger's git history with regressions marked, the reproducibility envelope, the trust
    state (verified by the code of `evalhub verify`), failed units, and the gate's answer
    for each Policy (--policy, default: every Policy).

    The HTML page is self-contained (no script, no network: it opens from file:// and in a CI
    artifact); the markdown suits a pull-request comment or the GitHub job summary.
    """
    built = build_report(
        load_project(),
        list(evaluations),
        list(policies),
        list(keys) or None,
        insecure,
        store=not no_store,
    )
    if out_dir is None:
        render = {"html": report_html, "json": report_json}.get(fmt, report_markdown)
        out(render(built).rstrip("\n"))
        return EXIT_OK
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / HTML_FILE).write_text(report_html(built), encoding="utf-8")
        (out_dir / MARKDOWN_FILE).write_text(report_markdown(built), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report into {out_dir}: {exc.strerror or exc}") from exc
    out(f"Wrote {out_dir / HTML_FILE} and {out_dir / MARKDOWN_FILE}")
    return EXIT_OK
