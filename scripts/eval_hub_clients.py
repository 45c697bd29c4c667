"""Build (once) the virtualenv holding EvalHub's own client packages, for the compatibility tests.

    .venv/bin/python scripts/eval_hub_clients.py

EvalHub's SDK (`eval-hub-sdk`: the Python client and its `evalhub` CLI) and its MCP server
(`eval-hub-mcp`: the Go binary `evalhub-mcp`) are what `evalhub serve` must work with unchanged.
The SDK's import package is also named `evalhub`, so it can never share a virtualenv with this
project: it lives in a managed environment under ~/.cache/evalhub/envs, built like a Provider's
(file lock, built aside, moved into place when complete, never rebuilt). Prints its path.
"""

from __future__ import annotations

import sys

from evalhub.adapters.environments import EnvironmentStore
from evalhub.core.errors import EvalhubError

# Pinned: the versions the compatibility tests were measured with (tests/integration/).
REQUIREMENTS = ["eval-hub-sdk[client,cli]==1.0.6", "eval-hub-mcp==1.0.2"]


def main() -> int:
    try:
        path = EnvironmentStore().ensure(REQUIREMENTS)
    except EvalhubError as exc:
        print(f"FAILED: {exc.message}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
