from __future__ import annotations

import sys
from pathlib import Path

import click

from evalhub.app.plan import make_project_plan, save_plan
from evalhub.app.project import load_project
from evalhub.app.render import render_kubernetes
from evalhub.cli.errors import EXIT_OK, EXIT_PENDING
from evalhub.cli.output import err, out
from evalhub.core.render_plan import plan_json, plan_markdown, plan_text

FORMATS = click.Choice(["text", "json", "markdown"])


@click.command()
@click.option("--evaluation", "-e", "names", multiple=True, help="Plan only these evaluations.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan; `evalhub apply PLAN` runs it, or refuses it once stale.",
)
@click.option(
    "--render",
    nargs=2,
    type=(click.Choice(["kubernetes"]), click.Path(file_okay=False, path_type=Path)),
    default=None,
    metavar="kubernetes DIR",
    help="Also write, as YAML files in DIR, the Job and ConfigMap of every unit the plan "
    "would run, as the Kubernetes executor would create them (for review).",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when changes are pending, 1 on errors.",
)
def plan(
    names: tuple[str, ...],
    fmt: str,
    out_path: Path | None,
    render: tuple[str, Path] | None,
    detailed_exitcode: bool,
) -> int:
    """Show what must run: diff the specs against the runs recorded in MLflow.

    Each evaluation is create, run, retry, rescore (no model calls), unchanged, or orphan,
    with the reason; units say which resolved field changed.
    """
    project = load_project()
    result = make_project_plan(project, list(names) or None)
    for note in result.notes:  # on stderr: the plan itself (JSON, markdown) stays clean
        err(f"note: {note.render()}")
    if fmt == "json":
        out(plan_json(result.plan))
    elif fmt == "markdown":
        out(plan_markdown(result.plan))
    else:
        out(plan_text(result.plan, colour=sys.stdout.isatty()))
    if out_path is not None:
        save_plan(result, out_path)
        err(f"Saved the plan to {out_path}; run it with `evalhub apply {out_path}`.")
    if render is not None:
        written = render_kubernetes(project, result, render[1])
        err(f"Wrote the manifests of {len(written)} unit(s) to {render[1]}.")
    if detailed_exitcode and result.plan.has_changes:
        return EXIT_PENDING
    return EXIT_OK
