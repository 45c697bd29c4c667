"""`evalhub lock [PROVIDER...]`: write each provider's lock beside its spec file.

The lock is the environment's exact packages as resolved for this platform and Python: the
provider's managed environment is built from its requirements (the cached one is reused, so
the lock is what the units ran in; `fresh` resolves anew in a temporary store) and its
installed distributions are written, headed by the digest of the requirements
(core/provider_lock.py). Commit the file: from then on the provider's identity includes it,
its environment holds exactly it, and validate and plan fail when it is stale.
"""

from __future__ import annotations

import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from evalhub.app import compose
from evalhub.app.jobs import environment_root
from evalhub.app.project import Project, require_project
from evalhub.app.specs import load_specs
from evalhub.core.errors import ConfigError, SpecError
from evalhub.core.provider_lock import lock_file, render_lock
from evalhub.core.suggest import suggest
from evalhub.ports import EnvironmentStore


@dataclass(frozen=True)
class Written:
    provider: str
    path: str
    packages: int
    changed: bool


def lock_providers(
    project: Project,
    names: list[str],
    step: Callable[[str, str], None],
    fresh: bool = False,
    environments: EnvironmentStore | None = None,
) -> list[Written]:
    """Lock the named providers (default: every one with requirements); `step(provider,
    text)` hears each build step. `environments`: where they are built (default: the
    project's store, or a temporary one when `fresh`)."""
    require_project(project)
    loaded = load_specs(project, project.spec_source(), locks=False)
    if not loaded.validation.ok:
        raise SpecError(loaded.validation.diagnostics)
    providers = loaded.validation.specs.providers
    for name in names:
        if name not in providers:
            raise ConfigError(f"no provider {name!r}", suggest(name, providers, "providers"))
        if not providers[name].spec.spec.requirements:
            raise ConfigError(
                f"provider {name!r} has no requirements: there is nothing to lock",
                "only providers with a managed environment (`requirements`) have a lock",
            )
    chosen = names or sorted(n for n, p in providers.items() if p.spec.spec.requirements)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    log = project.state_dir / "logs" / "environments.log"
    written = []
    with tempfile.TemporaryDirectory(prefix="evalhub-lock-") as scratch:
        root = Path(scratch) if fresh else environment_root(project)
        store = environments or compose.environment_store(root, project.config.executors.installer)
        for name in chosen:
            requirements = providers[name].spec.spec.requirements
            env = store.ensure(list(requirements), log, partial(step, name))
            packages = compose.lock(env)
            text = render_lock(name, requirements, packages, python, sysconfig.get_platform())
            path = Path(lock_file(providers[name]))
            before = path.read_text(encoding="utf-8") if path.is_file() else None
            if before != text:
                compose.write_atomic(path, text.encode())
            written.append(Written(name, lock_file(providers[name]), len(packages), before != text))
    return written
