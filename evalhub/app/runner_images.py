"""`evalhub runner-image NAME`: the runner image definition of a Provider
(evalhub.core.runner_image), for the dagger/ module and for building the image the Kubernetes
executor runs."""

from __future__ import annotations

from evalhub import __version__
from evalhub.app.project import Project
from evalhub.app.specs import load_specs
from evalhub.core.errors import ConfigError, SpecError
from evalhub.core.resolve import provider_lock
from evalhub.core.runner_image import RunnerImage
from evalhub.core.suggest import suggest


def provider_runner_image(project: Project, name: str) -> RunnerImage:
    """The runner image of the Provider `name` (ConfigError naming the Providers there are)."""
    loaded = load_specs(project, project.spec_source())
    if not loaded.validation.ok:
        raise SpecError(loaded.validation.diagnostics)
    providers = loaded.validation.specs.providers
    if name not in providers:
        raise ConfigError(f"no Provider named {name!r}", suggest(name, providers, "Providers"))
    spec = providers[name].spec.spec
    base = project.config.executors.dagger.base_image
    lock = provider_lock(loaded.digests, name)
    return RunnerImage(base, __version__, tuple(spec.requirements), spec.image, lock)
