from __future__ import annotations

import click

from evalhub.app.project import load_project
from evalhub.app.provider_locks import lock_providers
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import err, out


@click.command()
@click.argument("providers", nargs=-1)
@click.option(
    "--fresh",
    is_flag=True,
    help="Resolve the requirements anew in a temporary directory instead of locking the "
    "cached environment (what the units ran in).",
)
def lock(providers: tuple[str, ...], fresh: bool) -> int:
    """Write each provider's lock (`<provider>.lock` beside its spec file): the exact
    `name==version` of every package its managed environment holds, for this platform and
    Python. Commit it: the provider's identity then includes it, its environment is built
    from it exactly, and validate and plan fail when its requirements change without it.

    PROVIDERS default to every provider with requirements.
    """
    project = load_project()
    written = lock_providers(
        project, list(providers), lambda name, text: err(f"[lock] {name}: {text}"), fresh
    )
    for item in written:
        state = "wrote" if item.changed else "unchanged"
        out(f"{state} {item.path} ({item.packages} packages)")
    if any(item.changed for item in written):
        out("Commit the lock files: the locked providers' units plan to run again.")
    return EXIT_OK
