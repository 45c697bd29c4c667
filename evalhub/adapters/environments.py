"""Managed provider environments: one virtualenv per distinct set of install requirements.

Like pre-commit's store: keyed by a hash of the requirements (and the Python version), built once
and reused, built under a file lock (check, lock, check again), in a temporary directory that is
moved into place only when complete — a half-built environment is never used. Tools inside are
always run as `<env>/bin/python -m <module>`, which stays valid after the move.

Frameworks that need torch get `torch==2.13.0` (or whatever `torch==` pin they list) installed
first, on its own: otherwise pip resolves a multi-GB CUDA build as a dependency.

Each environment keeps its lock: the exact `name==version` of every distribution installed, as
resolved when it was built. Apply records it with every unit that ran in it (so one
fingerprint never silently means two environments), and an environment whose installed
packages no longer match its lock (something installed into it since) is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from evalhub.adapters.files import file_lock, write_atomic
from evalhub.core.canonical import sha256_hex
from evalhub.core.errors import ExecutionError

ENV_FORMAT = 1
MARKER = ".evalhub-env.json"


def default_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "evalhub" / "envs"


def environment_key(requirements: list[str], python_version: str) -> str:
    return sha256_hex(
        {"format": ENV_FORMAT, "python": python_version, "requirements": sorted(requirements)}
    )[:16]


class EnvironmentStore:
    def __init__(self, root: Path | None = None, python: str = sys.executable) -> None:
        self.root = root or default_root()
        self.python = python

    def path_for(self, requirements: list[str]) -> Path:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / environment_key(requirements, version)

    def is_ready(self, env: Path) -> bool:
        """Built completely, and still holding exactly what its lock says."""
        try:
            marker = json.loads((env / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        current = installed(env)
        if "lock" not in marker:  # built before locks were kept: take its lock now
            marker["lock"] = current
            # atomically: another process may be reading it (the cache is shared)
            write_atomic(env / MARKER, json.dumps(marker, indent=2).encode())
        return bool(marker["lock"] == current)

    def ensure(
        self,
        requirements: list[str],
        log: Path | None = None,
        step: Callable[[str], None] | None = None,
    ) -> Path | None:
        """The environment for `requirements` (None when there are none), built if needed;
        each build step is told to `step`."""
        if not requirements:
            return None
        final = self.path_for(requirements)
        if self.is_ready(final):
            return final
        with file_lock(final.with_name(final.name + ".lock")):
            if self.is_ready(final):
                return final  # another process built it while this one waited
            if final.exists():  # a crash before the marker was written, or a changed lock
                if (final / MARKER).is_file() and step is not None:
                    step("its installed packages differ from its lock: rebuilding")
                shutil.rmtree(final)
            tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                self._build(tmp, requirements, log, step or (lambda text: None))
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _build(
        self, env: Path, requirements: list[str], log: Path | None, step: Callable[[str], None]
    ) -> None:
        step("creating the virtualenv")
        self._run([self.python, "-m", "venv", str(env)], log)
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        torch = [r for r in requirements if r.replace(" ", "").startswith("torch==")]
        rest = [r for r in requirements if r not in torch]
        if torch:
            step(f"installing {' '.join(torch)}")
            self._run([*pip, *torch], log)
        if rest:
            step(f"installing {' '.join(rest)}")
            self._run([*pip, *rest], log)
        freeze = self._freeze(env)
        marker = {
            "format": ENV_FORMAT,
            "requirements": sorted(requirements),
            "packages": freeze,
            "lock": installed(env),
        }
        (env / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")

    @staticmethod
    def _freeze(env: Path) -> list[str]:
        return subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "freeze"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()

    @staticmethod
    def _run(command: list[str], log: Path | None) -> None:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"$ {' '.join(command)}\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ExecutionError(
                f"building a provider environment failed: `{' '.join(command)}` exited "
                f"{proc.returncode}:\n{tail}",
                "check the provider's `requirements` (pip must find every one on its index)",
            )


def installed(env: Path) -> list[str]:
    """`name==version` of every distribution installed in `env`, read from its metadata
    directories (what pip would list, without running pip: milliseconds)."""
    found = []
    for site in env.glob("lib/python*/site-packages"):
        for info in site.glob("*.dist-info"):
            name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
            found.append(f"{name.lower().replace('_', '-')}=={version}")
    return sorted(found)


def lock(env: Path | None) -> list[str]:
    """The environment's lock, as recorded when it was built (empty: no environment)."""
    return _recorded(env, "lock")


def packages(env: Path | None) -> list[str]:
    """The `pip freeze` of a managed environment, as recorded when it was built."""
    return _recorded(env, "packages")


def _recorded(env: Path | None, field: str) -> list[str]:
    if env is None:
        return []
    try:
        return list(json.loads((env / MARKER).read_text(encoding="utf-8"))[field])
    except (OSError, ValueError, KeyError):
        return []
