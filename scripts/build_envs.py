"""Build the managed environments of a project's framework Providers ahead of time.

    .venv/bin/python scripts/build_envs.py [PROJECT_DIR]

`evalhub apply` builds a Provider's environment the first time one of its units runs; this builds
them all up front, one after the other (.ci/run starts it in the background while the model server
compiles, so the framework tests find them ready). Safe to run beside an apply: each environment
is built under its own file lock, and a finished one is never rebuilt.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from evalhub.adapters.environments import EnvironmentStore
from evalhub.app.jobs import environment_root
from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core.errors import EvalhubError


def main() -> int:
    project = load_project(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    evaluations = resolved_evaluations(project, project.spec_source())
    wanted = sorted(
        {u.provider.requirements for e in evaluations for u in e.units if u.provider.requirements}
    )
    store = EnvironmentStore(environment_root(project))
    failed = 0
    for requirements in wanted:
        started = time.monotonic()
        try:
            path = store.ensure(list(requirements))
        except EvalhubError as exc:
            failed += 1
            print(f"FAILED {', '.join(requirements)}: {exc.message}", flush=True)
            continue
        print(f"{time.monotonic() - started:6.0f} s  {path}  {', '.join(requirements)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
