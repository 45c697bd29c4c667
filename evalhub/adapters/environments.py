"""Managed provider environments: one virtualenv per distinct set of install requirements.

Like pre-commit's store: keyed by a hash of the requirements (and the Python version), built once
and reused, built under a file lock (check, lock, check again), in a temporary directory that is
moved into place only when complete — a half-built environment is never used. Tools inside are
always run as `<env>/bin/python -m <module>`, which stays valid after the move.

Packages are installed with uv when it is there and pip's configuration translates into uv's
(installers.py; much faster on a cold cache), else with pip; `executors.installer` in
evalhub.yaml or EVALHUB_INSTALLER=pip forces pip. Frameworks that need torch get
`torch==2.13.0` (or whatever `torch==` pin they list) installed first, on its own: otherwise
the resolver picks a multi-GB CUDA build as a dependency.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from evalhub.adapters.files import file_lock, write_atomic
from evalhub.adapters.installers import (
    INSTALLER_ENV,
    Installer,
    UvSettings,
    chosen,
    describe,
    effective_pip_config,
    find_uv,
    redact,
    uv_environment,
    uv_settings,
)
from evalhub.core.canonical import sha256_hex
from evalhub.core.errors import ExecutionError

ENV_FORMAT = 1
MARKER = ".evalhub-env.json"
LOCK_FILE = ".evalhub-lock.txt"  # the lock an environment was built from, as installed


def default_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "evalhub" / "envs"


def environment_key(requirements: list[str], python_version: str, lock: Sequence[str] = ()) -> str:
    """The directory name of an environment. A locked one is keyed by its lock too (a
    changed lock is another environment); an unlocked one keeps the key it always had."""
    identity: dict[str, object] = {
        "format": ENV_FORMAT,
        "python": python_version,
        "requirements": sorted(requirements),
    }
    if lock:
        identity["lock"] = sorted(lock)
    return sha256_hex(identity)[:16]


class EnvironmentStore:
    def __init__(
        self,
        root: Path | None = None,
        python: str = sys.executable,
        installer: Installer = "auto",
    ) -> None:
        self.root = root or default_root()
        self.python = python
        self.installer = installer

    def path_for(self, requirements: list[str], lock: Sequence[str] = ()) -> Path:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / environment_key(requirements, version, lock)

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
        lock: Sequence[str] = (),
    ) -> Path | None:
        """The environment for `requirements` (None when there are none), built if needed;
        each build step is told to `step`. With a `lock` (a provider's committed lock file:
        `name==version` lines) it holds exactly the lock's packages, installed without
        resolving anything."""
        if not requirements:
            return None
        final = self.path_for(requirements, lock)
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
                unlocked = self.path_for(requirements)
                if lock and self.is_ready(unlocked) and _recorded(unlocked, "lock") == sorted(lock):
                    # the environment the lock was taken from (`evalhub lock`): the same
                    # packages, so linked, not installed again
                    if step is not None:
                        step("linking the environment its lock was taken from")
                    shutil.copytree(unlocked, tmp, symlinks=True, copy_function=_link)
                else:
                    self._build(tmp, requirements, log, step or (lambda text: None), lock)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _build(
        self,
        env: Path,
        requirements: list[str],
        log: Path | None,
        step: Callable[[str], None],
        lock: Sequence[str] = (),
    ) -> None:
        step("creating the virtualenv")
        self._run([self.python, "-m", "venv", str(env)], log)
        tool = self._tool(env, log, step)
        if lock:
            pinned = env / LOCK_FILE
            pinned.write_text("".join(f"{line}\n" for line in lock), encoding="utf-8")
            step(f"installing the {len(lock)} packages of its lock with {tool.name}")
            tool.sync(pinned)
        else:
            torch = [r for r in requirements if r.replace(" ", "").startswith("torch==")]
            rest = [r for r in requirements if r not in torch]
            for group in (torch, rest):  # torch alone first: else a CUDA build is resolved
                if group:
                    step(f"installing {' '.join(group)} with {tool.name}")
                    tool.install(group)
        found = installed(env)
        if lock and found != sorted(lock):
            extra = sorted(set(found) - set(lock))
            missing = sorted(set(lock) - set(found))
            raise ExecutionError(
                "building a provider environment from its lock did not reproduce the lock: "
                f"installed but not locked {extra or 'none'}, locked but not installed "
                f"{missing or 'none'}",
                "write the lock again on this platform and Python: `evalhub lock PROVIDER`",
            )
        marker = {
            "format": ENV_FORMAT,
            "requirements": sorted(requirements),
            "installer": tool.name,
            "packages": self._freeze(env),
            "lock": found,
        }
        (env / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")

    def _tool(self, env: Path, log: Path | None, step: Callable[[str], None]) -> Tool:
        """uv with pip's effective configuration translated, or pip (installers.py)."""
        python = str(env / "bin" / "python")
        choice = chosen(self.installer, os.environ)
        if choice == "pip":
            return Pip(python, log, self._run)
        binary = find_uv()
        if binary is None:
            if choice == "uv":
                raise ExecutionError(
                    "the installer is set to uv, but no uv was found",
                    "install evalhub with its dependencies (uv is one), or set "
                    f"`executors.installer: pip` in evalhub.yaml or {INSTALLER_ENV}=pip",
                )
            return Pip(python, log, self._run)
        listing = self._run([python, "-m", "pip", "config", "list"], None)
        settings = uv_settings(effective_pip_config(listing))
        if settings.untranslatable:
            names = ", ".join(settings.untranslatable)
            if choice == "auto":
                step(f"pip's setting {names} has no uv equivalent: installing with pip")
                return Pip(python, log, self._run)
            step(f"installer uv (forced): ignoring pip's setting {names}, which uv lacks")
        return Uv(binary, python, settings, log, self._run)

    def _run(
        self, command: list[str], log: Path | None, env: Env = None, shown_env: str = ""
    ) -> str:
        """Every build step runs here (a seam: tests simulate the installers)."""
        return run_step(command, log, env, shown_env)

    @staticmethod
    def _freeze(env: Path) -> list[str]:
        return subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "freeze"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()


Env = Mapping[str, str] | None
Runner = Callable[[list[str], Path | None, Env, str], str]


class Tool(Protocol):
    name: str

    def install(self, requirements: list[str]) -> None: ...

    def sync(self, lock_file: Path) -> None: ...


class Pip:
    name = "pip"

    def __init__(self, python: str, log: Path | None, run: Runner) -> None:
        self.command = [python, "-m", "pip", "install", "--disable-pip-version-check"]
        self.log = log
        self.run = run

    def install(self, requirements: list[str]) -> None:
        self.run([*self.command, *requirements], self.log, None, "")

    def sync(self, lock_file: Path) -> None:
        self.run([*self.command, "--no-deps", "-r", str(lock_file)], self.log, None, "")


class Uv:
    name = "uv"

    def __init__(
        self, binary: str, python: str, settings: UvSettings, log: Path | None, run: Runner
    ) -> None:
        # --no-config: uv.toml or a pyproject's [tool.uv] wherever evalhub runs must not
        # change what is installed; pip's configuration, translated, is the only one.
        self.args = ["--python", python, "--no-config", *settings.args]
        self.binary = binary
        self.env = uv_environment(os.environ, settings)
        self.shown = describe(settings)
        self.log = log
        self.run = run

    def install(self, requirements: list[str]) -> None:
        command = [self.binary, "pip", "install", *self.args, *requirements]
        self.run(command, self.log, self.env, self.shown)

    def sync(self, lock_file: Path) -> None:
        command = [self.binary, "pip", "sync", *self.args, str(lock_file)]
        self.run(command, self.log, self.env, self.shown)


def run_step(command: list[str], log: Path | None, env: Env = None, shown_env: str = "") -> str:
    """Run a build step; its output goes to `log`, and its tail into the error if it fails.
    Returns its standard output."""
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    shown = redact(" ".join(command))
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as handle:
            prefix = f"{shown_env} " if shown_env else ""
            handle.write(f"$ {prefix}{shown}\n{redact(proc.stdout)}{redact(proc.stderr)}\n")
    if proc.returncode != 0:
        tail = "\n".join(redact(proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ExecutionError(
            f"building a provider environment failed: `{shown}` exited {proc.returncode}:\n{tail}",
            "check the provider's `requirements` (pip must find every one on its index)",
        )
    return proc.stdout


def _link(source: str, target: str) -> None:
    """A hard link (the store's files are never modified), a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


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


def build_at(env: Path, requirements: list[str], lock: Sequence[str] = ()) -> None:
    """Build the managed environment of `requirements` (exactly `lock`, when given) at `env`
    itself (not keyed under a store root): what the runner image does at ENVIRONMENT_DIR
    (evalhub.core.runner_image), the same steps as a local managed environment."""
    EnvironmentStore(env.parent)._build(env, requirements, None, lambda text: print(text), lock)


def build_arguments(args: list[str]) -> tuple[Path, list[str], list[str]]:
    """`DIR REQUIREMENT... [--lock PIN...]` -> (DIR, requirements, lock)."""
    rest = args[1:]
    cut = rest.index("--lock") if "--lock" in rest else len(rest)
    return Path(args[0]), rest[:cut], rest[cut + 1 :]


def main(argv: list[str] | None = None) -> int:
    """`python -m evalhub.adapters.environments build DIR REQUIREMENT... [--lock PIN...]`
    (in image builds)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "build":
        usage = "build DIR REQUIREMENT... [--lock PIN...]"
        print(f"usage: python -m evalhub.adapters.environments {usage}")
        return 2
    try:
        build_at(*build_arguments(args[1:]))
    except ExecutionError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
