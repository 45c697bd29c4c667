"""How long building one real framework environment takes from a cold state: pip vs uv.

    .venv/bin/python bench/env_build_bench.py [PROVIDER]   (default: guidellm)

Each side builds the provider's managed environment (the requirements of its spec under
evals/providers/, torch first) exactly as `evalhub apply` does, with the installer forced, in a
fresh temporary XDG_CACHE_HOME: no evalhub environment, no pip cache, no uv cache, so every
package is downloaded (or read from this machine's find-links and file indexes) and unpacked.
The shared cache ~/.cache/evalhub/envs is never touched. pip is the baseline; both sides run
in the same process, one after the other, and both must end with the same lock (else the
ratio would compare two different environments). Prints the wall times and the ratio.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from evalhub.adapters.environments import EnvironmentStore, lock

ROOT = Path(__file__).resolve().parent.parent


def requirements(provider: str) -> list[str]:
    spec = YAML(typ="safe").load((ROOT / "evals" / "providers" / f"{provider}.yaml").read_text())
    return list(spec["spec"]["requirements"])


def build(installer: str, reqs: list[str]) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory(prefix=f"evalhub-cold-{installer}-") as cache:
        saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = cache  # pip's, uv's and evalhub's caches: all cold
        try:
            store = EnvironmentStore(Path(cache) / "evalhub" / "envs", installer=installer)  # type: ignore[arg-type]
            started = time.monotonic()
            env = store.ensure(
                reqs, Path(cache) / "build.log", lambda s: print(f"  [{installer}] {s}")
            )
            took = time.monotonic() - started
            return took, lock(env)
        finally:
            if saved is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = saved


def main() -> int:
    provider = sys.argv[1] if len(sys.argv) > 1 else "guidellm"
    reqs = requirements(provider)
    print(f"cold build of the {provider} environment: {' '.join(reqs)}")
    pip_s, pip_lock = build("pip", reqs)
    print(f"pip: {pip_s:.1f} s ({len(pip_lock)} packages)")
    uv_s, uv_lock = build("uv", reqs)
    print(f"uv:  {uv_s:.1f} s ({len(uv_lock)} packages)")
    if pip_lock != uv_lock:
        print("the locks differ:", sorted(set(pip_lock) ^ set(uv_lock)))
        return 1
    print(f"same lock; uv/pip = {uv_s / pip_s:.2f} (pip {pip_s / uv_s:.1f}x slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
