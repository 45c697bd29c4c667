"""Build the managed environments of a project's framework Providers ahead of time.

    .venv/bin/python scripts/build_envs.py [PROJECT_DIR]

`evalhub apply` builds a Provider's environment the first time one of its units runs; this builds
them all up front, two at a time, printing one line per build step (`make demo` and .ci/run start
it in the background while the model server compiles, so the frameworks find them ready). Safe to
run beside an apply: each environment is built under its own file lock, and a finished one is
never rebuilt.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evalhub.adapters.environments import EnvironmentStore
from evalhub.app.jobs import Needs, environment_root, needs
from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core.errors import EvalhubError
from evalhub.core.render_progress import environment_name, seconds

BUILDERS = 2  # pip is mostly downloads and unpacking: two at a time keep 2 cores busy


def main() -> int:
    project = load_project(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    evaluations = resolved_evaluations(project, project.spec_source())
    users: dict[Needs, set[str]] = {}  # (requirements, lock) -> the providers using them
    for unit in (u for e in evaluations for u in e.units if u.provider.requirements):
        users.setdefault(needs(unit), set()).add(unit.provider.name)
    store = EnvironmentStore(
        environment_root(project), installer=project.config.executors.installer
    )

    def build(wanted: Needs) -> bool:
        requirements, lock = wanted
        name = environment_name(sorted(users[wanted]), requirements)
        started = time.monotonic()
        log = project.state_dir / "logs" / "environments.log"

        def step(text: str) -> None:
            print(f"[envs] {name}: {text}", flush=True)

        try:
            path = store.ensure(list(requirements), log, step, lock)
        except EvalhubError as exc:
            print(f"[envs] {name}: FAILED: {exc.message}", flush=True)
            return False
        took = seconds(time.monotonic() - started)
        print(f"[envs] {name}: ready ({took}) {path}", flush=True)
        return True

    with ThreadPoolExecutor(BUILDERS) as pool:
        built = list(pool.map(build, sorted(users)))
    return 0 if all(built) else 1


if __name__ == "__main__":
    sys.exit(main())
