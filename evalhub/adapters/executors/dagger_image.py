"""The runner image (evalhub.core.runner_image) as a Dagger container chain.

The Dagger executor and the dagger/ module's `runner-image` function build it here; the
Kubernetes executor builds the same definition (`RunnerImage.containerfile()` or this chain
published to its registry).
"""

from __future__ import annotations

from pathlib import Path

import dagger
import evalhub
from evalhub.core.errors import ConfigError
from evalhub.core.runner_image import SOURCE_DIR, SOURCE_FILES, WORK_DIR, RunnerImage


def checkout() -> Path | None:
    """The evalhub checkout this evalhub runs from (None: installed from a wheel)."""
    root = Path(evalhub.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def host_checkout(client: dagger.Client) -> dagger.Directory:
    """The checkout this evalhub runs from, as the engine loads it: only what the wheel needs
    (SOURCE_FILES) leaves the host."""
    source = checkout()
    if source is None:
        raise ConfigError(
            "the Dagger executor builds runner images from evalhub's source, but this evalhub "
            "was installed without it",
            "run evalhub from a checkout, or give the Provider an `image` with evalhub installed",
        )
    return client.host().directory(str(source), include=list(SOURCE_FILES))


def runner_container(
    client: dagger.Client, image: RunnerImage, source: dagger.Directory | None = None
) -> dagger.Container:
    """The runner image of `image` as a (lazy) Dagger container; `source`: evalhub's checkout
    (a repository root; default: the one this evalhub runs from)."""
    if image.own is not None:
        return client.container().from_(image.own).with_workdir(WORK_DIR)
    files = source if source is not None else host_checkout(client)
    stage = client.container().from_(image.base)
    stage = stage.with_directory(SOURCE_DIR, files, include=list(SOURCE_FILES))
    for step in image.wheel_stage():
        stage = stage.with_exec(list(step))
    wheel = image.wheel
    runner = client.container().from_(image.base).with_file(wheel, stage.file(wheel))
    for step in image.install_steps(wheel):
        runner = runner.with_exec(list(step))
    return runner.with_workdir(WORK_DIR)
