"""The runner image of a Provider: the one definition of the container a unit runs in.

Both container executors use it: the Dagger executor builds it step by step through the Dagger
SDK (evalhub/adapters/executors/dagger_image.py), and the Kubernetes executor names the image
built from the same steps (`tag`, or `containerfile()` for a registry build). Two executors, one
definition: a unit runs against the same packages wherever it runs.

The image is either
- built: Python 3.11 slim + evalhub (a wheel built from this checkout in a first stage) + the
  Provider's `requirements` in a managed environment at ENVIRONMENT_DIR, built by the same code
  as the local managed environments (`python -m evalhub.adapters.environments build`), so the
  torch CPU pin is installed first, on its own, exactly as it is locally; or
- the Provider's own `image` (pin it by digest), used as it is: it must have `evalhub` on PATH
  and, when the Provider lists requirements, their environment at ENVIRONMENT_DIR.

Pure: no file, network or engine access; the evalhub version is passed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from evalhub.core.canonical import sha256_hex
from evalhub.core.resolved import ResolvedProvider

RUNNER_IMAGE_FORMAT = 1
DEFAULT_BASE = "python:3.11-slim"
SOURCE_DIR = "/src/evalhub"  # the checkout, in the wheel stage
WHEEL_DIR = "/wheels"
ENVIRONMENT_DIR = "/opt/evalhub/env"  # the Provider's managed environment inside the image
WORK_DIR = "/evalhub"  # a unit's files: unit.json, result.json, output/, spec/
# What the wheel stage needs of the checkout (nothing else of the repository enters the image).
SOURCE_FILES = ("pyproject.toml", "README.md", "evalhub/**")
PIP = ("python", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check")


@dataclass(frozen=True)
class RunnerImage:
    """How to make one Provider's runner image. `own` is the Provider's pinned image (then
    nothing is built); otherwise `base` + evalhub's wheel + `requirements`."""

    base: str
    evalhub_version: str
    requirements: tuple[str, ...]
    own: str | None = None
    lock: tuple[str, ...] = ()  # the Provider's committed lock: its environment holds exactly it

    @property
    def built(self) -> bool:
        return self.own is None

    @property
    def environment(self) -> str | None:
        """The unit's `environment` inside the image (None: the Provider needs none)."""
        return ENVIRONMENT_DIR if self.requirements else None

    @property
    def wheel(self) -> str:
        """Where the wheel stage leaves evalhub's wheel (and the runner stage copies it)."""
        return f"{WHEEL_DIR}/evalhub-{self.evalhub_version}-py3-none-any.whl"

    def as_json(self) -> dict[str, object]:
        """The definition with every step, for builders outside this process (the dagger/
        module replays these steps; a registry build can too)."""
        return {
            "base": self.base,
            "evalhub_version": self.evalhub_version,
            "requirements": list(self.requirements),
            "lock": list(self.lock),
            "own": self.own,
            "environment": self.environment,
            "tag": self.tag,
            "key": self.key(),
            "source_dir": SOURCE_DIR,
            "source_files": list(SOURCE_FILES),
            "wheel": self.wheel,
            "wheel_stage": [list(step) for step in self.wheel_stage()] if self.built else [],
            "install_steps": [list(s) for s in self.install_steps(self.wheel)]
            if self.built
            else [],
            "workdir": WORK_DIR,
        }

    def wheel_stage(self) -> list[tuple[str, ...]]:
        """Commands of the first stage (`base` with the checkout at SOURCE_DIR): evalhub's wheel
        into WHEEL_DIR. Its dependencies are resolved in the runner stage."""
        return [
            (
                "python",
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-cache-dir",
                "-w",
                WHEEL_DIR,
                SOURCE_DIR,
            )
        ]

    def install_steps(self, wheel: str) -> list[tuple[str, ...]]:
        """Commands of the runner stage (`base` with the wheel file at `wheel`): evalhub, then
        the Provider's environment (torch first, as local managed environments are built)."""
        steps: list[tuple[str, ...]] = [(*PIP, wheel)]
        if self.requirements:
            steps.append(
                (
                    "python",
                    "-m",
                    "evalhub.adapters.environments",
                    "build",
                    ENVIRONMENT_DIR,
                    *self.requirements,
                    *(("--lock", *self.lock) if self.lock else ()),
                )
            )
        return steps

    def key(self) -> str:
        """A content identity of the definition: equal keys, equal images (with a pinned base)."""
        identity: dict[str, object] = {
            "format": RUNNER_IMAGE_FORMAT,
            "base": self.base,
            "own": self.own,
            "evalhub": self.evalhub_version,
            # pip resolves requirements as a set; the torch pin goes first whatever the order
            "requirements": sorted(self.requirements),
        }
        if self.lock:  # present only then: unlocked Providers keep their image keys
            identity["lock"] = sorted(self.lock)
        return sha256_hex(identity)

    @property
    def tag(self) -> str:
        """A reference for a registry: `evalhub-runner:<version>-<key>`, or the own image."""
        if self.own is not None:
            return self.own
        return f"evalhub-runner:{self.evalhub_version}-{self.key()[:16]}"

    def containerfile(self) -> str:
        """The same build as a Containerfile (context: the repository root), for building the
        image the Kubernetes executor runs without Dagger."""
        if self.own is not None:
            return f"FROM {self.own}\n"
        wheel = self.wheel
        lines = [f"FROM {self.base} AS wheel"]
        lines += [
            f"COPY {path.removesuffix('/**')} {SOURCE_DIR}/{path.removesuffix('/**')}"
            for path in SOURCE_FILES
        ]
        lines += [f"RUN {_json(step)}" for step in self.wheel_stage()]
        lines += [f"FROM {self.base}", f"COPY --from=wheel {wheel} {wheel}"]
        lines += [f"RUN {_json(step)}" for step in self.install_steps(wheel)]
        lines += [f"WORKDIR {WORK_DIR}"]
        return "\n".join(lines) + "\n"


def runner_image(
    provider: ResolvedProvider, evalhub_version: str, base: str = DEFAULT_BASE
) -> RunnerImage:
    """The runner image of `provider`."""
    return RunnerImage(base, evalhub_version, provider.requirements, provider.image, provider.lock)


def _json(step: tuple[str, ...]) -> str:
    return json.dumps(list(step))
