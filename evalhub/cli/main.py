"""`evalhub`: the entry point. `main(argv)` is the only place argv is parsed."""

from __future__ import annotations

import difflib
import gc
import importlib
import sys
from collections.abc import Sequence

import click

from evalhub import __version__
from evalhub.cli.errors import EXIT_OK, run_guarded

# Commands are imported when used: `evalhub validate` must not pay for MLflow, httpx or the
# executors (half a second of startup, times every pre-commit run). Each names its module and
# the first paragraph of its help, which `evalhub --help` shows without importing the module
# (importing all of them took 0.45 s); tests/cli/test_startup.py keeps the two in step.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "evalhub.cli.commands.init_cmd:init",
        "Start a project: evalhub.yaml, an example spec layout and a .gitignore entry.",
    ),
    "validate": (
        "evalhub.cli.commands.validate_cmd:validate",
        "Check spec files: syntax, schema, references, datasets and secrets.",
    ),
    "schema": (
        "evalhub.cli.commands.schema_cmd:schema",
        "Write the JSON Schemas of every kind and of evalhub.yaml (draft 2020-12).",
    ),
    "lock": (
        "evalhub.cli.commands.lock_cmd:lock",
        "Write each provider's lock (`<provider>.lock` beside its spec file): the exact "
        "`name==version` of every package its managed environment holds, for this platform "
        "and Python. Commit it: the provider's identity then includes it, its environment is "
        "built from it exactly, and validate and plan fail when its requirements change "
        "without it.",
    ),
    "plan": (
        "evalhub.cli.commands.plan_cmd:plan",
        "Show what must run: diff the specs against the runs recorded in MLflow.",
    ),
    "apply": (
        "evalhub.cli.commands.apply_cmd:apply",
        "Run what changed, record it in MLflow, score it, then sign and publish the results.",
    ),
    "run-unit": (
        "evalhub.cli.commands.run_unit_cmd:run_unit",
        "Run one unit from its spec (UNIT.json) and write its result.",
    ),
    "publish": (
        "evalhub.cli.commands.publish_cmd:publish",
        "Copy published results and their attestations to another OCI target.",
    ),
    "verify": (
        "evalhub.cli.commands.verify_cmd:verify",
        "Check that a published result is what a trusted key signed.",
    ),
    "keys": (
        "evalhub.cli.commands.keys_cmd:keys",
        "Signing keys: generate the project's key pair, list the trusted public keys.",
    ),
    "gate": (
        "evalhub.cli.commands.gate_cmd:gate",
        "May the model be promoted? Checks a Policy against the results ledger.",
    ),
    "audit": (
        "evalhub.cli.commands.audit_cmd:audit",
        "Check every result the ledger's git history records.",
    ),
    "history": (
        "evalhub.cli.commands.history_cmd:history",
        "An evaluation's results over time, from the ledger's git history: the aggregate and "
        "verdict of each, per model revision, with the published result and the MLflow run.",
    ),
    "show": (
        "evalhub.cli.commands.show_cmd:show",
        "An evaluation's current ledger entry: scores against thresholds, gates, verdict, and "
        "where the evidence lives (the ledger commit, the signed result, the MLflow run).",
    ),
    "report": (
        "evalhub.cli.commands.report_cmd:report",
        "The results at a glance: of EVALUATIONS, or what --policy requires, else of every "
        "evaluation. Verdict and why, scores against thresholds with a chart, the trend over "
        "the ledger's git history with regressions marked, the reproducibility envelope, the "
        "trust state (verified by the code of `evalhub verify`), failed units, and the gate's "
        "answer for each Policy (--policy, default: every Policy).",
    ),
    "evidence": (
        "evalhub.cli.commands.evidence_cmd:evidence",
        "Pack the evidence of EVALUATIONS (or of what --policy requires) into one archive: the "
        "ledger entries and their git commits, the signed results and DSSE attestations, the "
        "trusted public keys, the verify and audit transcripts, and VERIFY.md with a script "
        "that needs only securesystemslib. The same inputs give the same archive bytes.",
    ),
    "serve": (
        "evalhub.cli.commands.serve_cmd:serve",
        "Serve EvalHub's REST API over the project, for EvalHub's client, CLI and MCP server.",
    ),
    "mcp": (
        "evalhub.cli.commands.mcp_cmd:mcp",
        "Serve evalhub's tools and resources to an MCP client over stdio.",
    ),
    "jobs": (
        "evalhub.cli.commands.jobs_cmd:jobs",
        "Submit and watch evaluation jobs on `evalhub serve`.",
    ),
    "ui": (
        "evalhub.cli.commands.ui_cmd:ui",
        "Start the MLflow UI on the project's store, until Ctrl-C.",
    ),
    "store": (
        "evalhub.cli.commands.store_cmd:store",
        "Maintain the MLflow store the project records into.",
    ),
    "runner-image": (
        "evalhub.cli.commands.runner_image_cmd:runner_image",
        "The runner image a Provider's units run in (the Dagger and Kubernetes executors).",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, name = target[0].partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """What click.Group writes, from the summaries above instead of the imported commands:
        a stand-in Command shortens each the way the real one would."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=summary).get_short_help_str(limit))
            for name, (_, summary) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="evalhub")
def cli() -> None:
    """Declarative GitOps evaluation-as-code for LLM and RAG systems.

    Specs live in git as YAML; evalhub validates them, plans what changed, runs it, records
    the results in MLflow, signs and publishes them, and gates promotion on them.
    """


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # A short-lived command allocating many small objects (a plan of 5,000 units): collecting
    # every 700 allocations costs ~15% of its time for nothing.
    gc.set_threshold(50_000, 20, 100)

    def body() -> int:
        result = cli.main(args=args, prog_name="evalhub", standalone_mode=False)
        return int(result) if isinstance(result, int) else EXIT_OK

    code = run_guarded(body)
    if argv is None:  # this process is the program, and it ends now
        ending()
    return code


def ending() -> None:
    """Spare the interpreter's last full collection: after an apply, MLflow, SQLAlchemy and
    pydantic leave millions of objects, and traversing them once more at exit took ~0.45 s of
    every `evalhub apply` and `run-unit` (the fixed cost of a unit, bench/apply_bench.py).
    Frozen objects are still freed as the modules are torn down; exit handlers, thread joins
    and stream flushes run as usual."""
    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
