from __future__ import annotations

import json

import click

from evalhub.app.project import load_project
from evalhub.app.runner_images import provider_runner_image
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import out


@click.command("runner-image")
@click.argument("provider")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "containerfile"]),
    default="json",
    show_default=True,
)
def runner_image(provider: str, fmt: str) -> int:
    """The runner image a Provider's units run in (the Dagger and Kubernetes executors).

    `json`: its definition (base, requirements, the Provider's own image, tag, key) and
    every build step;
    `containerfile`: the same build as a Containerfile whose context is the repository root.
    """
    image = provider_runner_image(load_project(), provider)
    if fmt == "containerfile":
        out(image.containerfile().rstrip("\n"))
        return EXIT_OK
    out(json.dumps(image.as_json(), indent=2))
    return EXIT_OK
