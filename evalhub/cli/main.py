"""`evalhub`: the entry point. `main(argv)` is the only place argv is parsed."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from evalhub import __version__
from evalhub.cli.commands import (
    apply_cmd,
    init_cmd,
    plan_cmd,
    run_unit_cmd,
    schema_cmd,
    validate_cmd,
)
from evalhub.cli.errors import EXIT_OK, run_guarded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="evalhub")
def cli() -> None:
    """Declarative GitOps evaluation-as-code for LLM and RAG systems.

    Specs live in git as YAML; evalhub validates them, plans what changed, runs it, records
    the results in MLflow, signs and publishes them, and gates promotion on them.
    """


cli.add_command(init_cmd.init)
cli.add_command(validate_cmd.validate)
cli.add_command(schema_cmd.schema)
cli.add_command(plan_cmd.plan)
cli.add_command(apply_cmd.apply)
cli.add_command(run_unit_cmd.run_unit)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        result = cli.main(args=args, prog_name="evalhub", standalone_mode=False)
        return int(result) if isinstance(result, int) else EXIT_OK

    return run_guarded(body)


if __name__ == "__main__":
    sys.exit(main())
