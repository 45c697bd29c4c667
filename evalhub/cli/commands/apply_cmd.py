from __future__ import annotations

import sys
from pathlib import Path

import click

from evalhub.app.apply import ApplyOptions, ApplyReport
from evalhub.app.apply import apply as run_apply
from evalhub.app.keys import has_signing_key
from evalhub.app.ledger import CommitOptions
from evalhub.app.project import load_project
from evalhub.cli.errors import EXIT_ERROR, EXIT_OK
from evalhub.cli.output import err, out
from evalhub.cli.progress import ApplyDisplay
from evalhub.core.errors import ConfigError
from evalhub.core.plan import Plan
from evalhub.core.render_apply import (
    ApplyOutcome,
    SummaryRow,
    apply_json,
    apply_junit,
    apply_markdown,
    summary_rows_text,
)
from evalhub.core.render_plan import plan_text


@click.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--evaluation", "-e", "names", multiple=True, help="Apply only these evaluations.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 256), help="Units run at once.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before running.")
@click.option(
    "--no-publish",
    is_flag=True,
    help="Record only; do not sign and publish results (the plan keeps them pending).",
)
@click.option(
    "--commit",
    "commit",
    is_flag=True,
    help="Commit the changed ledger files (results/<evaluation>.json) to git; refused when the "
    "specs have uncommitted changes.",
)
@click.option(
    "--sign/--no-sign",
    default=None,
    help="SSH-sign the ledger commit (default: ledger.sign_commits in evalhub.yaml).",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="EVALHUB_LEDGER_SIGNING_KEY",
    help="The SSH private key signing ledger commits (default: git's user.signingkey). "
    "Env: EVALHUB_LEDGER_SIGNING_KEY.",
)
@click.option("--push", is_flag=True, help="Push the branch after the ledger commit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown", "junit"]),
    default="text",
    show_default=True,
    help="The report on stdout (progress always goes to stderr): json (format_version 1), "
    "markdown (a GitHub job summary) or junit (JUnit XML for CI test reporters).",
)
@click.option(
    "--skip-ci",
    is_flag=True,
    help="Add `[skip ci]` to the ledger commit's message, so pushing it does not start CI again.",
)
def apply(
    plan_file: Path | None,
    names: tuple[str, ...],
    concurrency: int | None,
    yes: bool,
    no_publish: bool,
    commit: bool,
    sign: bool | None,
    signing_key: Path | None,
    push: bool,
    skip_ci: bool,
    fmt: str,
) -> int:
    """Run what changed, record it in MLflow, score it, then sign and publish the results.

    Without PLAN_FILE, plans first (like `evalhub plan`) and asks before running; with a plan
    saved by `evalhub plan --out`, runs exactly that plan without asking (it was reviewed when
    it was saved), or refuses it if the specs or the recorded runs changed since. Results are
    signed with the project's key (`evalhub keys generate`) and published to `registry.target`
    (default: the OCI layout .evalhub/oci); with no key, nothing is published (apply says so).
    Exit 1 when a unit failed (the others still run and record) or
    a result could not be published (it stays recorded; the next apply publishes it).

    Each complete result is also written to the ledger, `<ledger.dir>/<evaluation>.json`
    (default results/). With --commit, exactly the changed ledger files are committed with a
    structured message (`evalhub: record …` and Evalhub-* trailers); --sign signs that commit
    with an SSH key and --push pushes the branch.
    """
    if plan_file is not None and names:
        raise ConfigError("give a saved plan or --evaluation, not both")
    if (sign or push or skip_ci) and not commit:
        raise ConfigError("--sign, --push and --skip-ci apply to the ledger commit", "add --commit")
    interactive = sys.stdin.isatty()
    project = load_project()
    display = ApplyDisplay()

    def confirm(plan: Plan) -> bool:
        err(plan_text(plan, colour=sys.stderr.isatty()))
        # A saved plan was reviewed when it was saved (Terraform's contract): no question.
        if not (yes or plan_file is not None):
            if not interactive:
                raise ConfigError(
                    "apply would run units but cannot ask for confirmation (no terminal)",
                    "save the plan and apply exactly it: `evalhub plan --out plan.json`, "
                    "then `evalhub apply plan.json`; or `evalhub apply --yes`",
                )
            if not click.confirm("\nRun these units?", default=False, err=True):
                return False
        display.begin(plan.summary.units)
        return True

    with display:
        options = ApplyOptions(
            plan_file=plan_file,
            names=list(names) or None,
            concurrency=concurrency,
            confirm=confirm,
            waiting=lambda: err("Another apply is running against this store; waiting for it…"),
            display=display,
            environment_events=display,
            publish=not no_publish,
            ledger=CommitOptions(
                commit=commit, sign=sign, push=push, signing_key=signing_key, skip_ci=skip_ci
            ),
        )
        report = run_apply(project, options)
    return render(report, fmt, no_key=not no_publish and not has_signing_key(project))


NO_KEY_NOTE = (
    "No signing key (signing.key_env, .evalhub/keys/): the results are recorded, but not signed "
    "or published, so `evalhub gate` will not accept them. Run `evalhub keys generate` once; "
    "the next `evalhub apply` signs and publishes them without re-running anything."
)


def outcome_of(report: ApplyReport, no_key: bool) -> ApplyOutcome:
    rows = [
        SummaryRow(
            e.name,
            e.action,
            e.units_run,
            e.units_failed,
            e.score.aggregate if e.score else None,
            e.score.verdict if e.score else "—",
            e.score.reasons if e.score else (),
            run_id=e.run_id,
            published=e.published,
            publish_error=e.publish_error,
            ledger=e.ledger,
        )
        for e in report.evaluations
    ]
    units = list(report.units)
    notes = []
    if report.evaluations and no_key:
        notes.append(NO_KEY_NOTE)
    if report.unpublished:
        notes.append(
            "Recorded, but not published (so not in the ledger yet): the next `evalhub apply` "
            "publishes it without re-running, then writes its ledger entry."
        )
    if report.failed_units:
        notes.append(
            f"{len(report.failed_units)} unit(s) failed; `evalhub apply` again retries only those."
        )
    committed = report.ledger_commit.commit if report.ledger_commit else None
    ok = not report.unpublished and not report.failed_units
    return ApplyOutcome(rows, units, notes, committed, ok)


def render(report: ApplyReport, fmt: str = "text", no_key: bool = False) -> int:
    outcome = outcome_of(report, no_key)
    status = EXIT_OK if outcome.ok else EXIT_ERROR
    if fmt != "text":
        writer = {"json": apply_json, "markdown": apply_markdown, "junit": apply_junit}[fmt]
        out(writer(outcome))
        return status
    if not report.evaluations:
        out(plan_text(report.plan))
        _committed(report)  # ledger files an earlier apply could not commit
        return EXIT_OK
    out(summary_rows_text(outcome.evaluations))
    for entry in report.evaluations:
        if entry.published:
            out(f"published {entry.name}: {entry.published}")
    for entry in report.evaluations:
        if entry.ledger:
            out(f"ledger {entry.name}: {entry.ledger}")
    _committed(report)
    for entry in report.unpublished:
        err(f"not published {entry.name}: {entry.publish_error}")
    for note in outcome.notes:
        err(f"\n{note}")
    return status


def _committed(report: ApplyReport) -> None:
    committed = report.ledger_commit
    if committed is not None:
        how = "signed commit" if committed.signed else "commit"
        out(f"recorded {len(committed.files)} result(s) in {how} {committed.commit[:12]}")
        if committed.pushed:
            out(f"pushed {committed.pushed}")
