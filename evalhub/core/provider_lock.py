"""Provider locks: the exact packages of a provider's managed environment, committed with the
specs, so one fingerprint never silently means two different environments.

`evalhub lock PROVIDER` resolves a Provider's `requirements` (for this platform and Python) and
writes `<provider>.lock` beside the spec file that defines it: a pip requirements file of
`name==version` lines, headed by the digest of the requirements it was resolved from.

- Identity: a locked provider's identity includes the lock's digest (fingerprint.py), so
  relocking re-plans its units; a provider without a lock keeps the identity it always had.
- Build: a locked provider's environment holds exactly the lock (installed without resolving),
  keyed by it, so a changed lock is a new environment.
- Staleness: a lock whose requirements digest differs from the provider's requirements is an
  error (the environment would not be what the spec says); a provider with requirements and no
  lock is a note (its environment is whatever resolves on the day it is built).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evalhub.core.canonical import sha256_hex
from evalhub.core.errors import Diagnostic
from evalhub.core.spec import Provider
from evalhub.core.specset import Located

LOCK_FORMAT = 1
LOCK_SUFFIX = ".lock"
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*==[A-Za-z0-9][A-Za-z0-9._+!-]*$")
_HEADER = re.compile(r"^#\s*(requirements|python|platform|format):\s*(\S+)\s*$")


@dataclass(frozen=True)
class ProviderLock:
    packages: tuple[str, ...]  # sorted `name==version`
    requirements: str  # requirements_digest of what it was resolved from
    python: str = ""
    platform: str = ""


def lock_file(provider: Located[Provider]) -> str:
    """The lock's path as shown (beside the provider's spec file, named after the provider)."""
    name = f"{provider.spec.metadata.name}{LOCK_SUFFIX}"
    return posixpath.join(posixpath.dirname(provider.doc.file), name)


def requirements_digest(requirements: Sequence[str]) -> str:
    """What a lock was resolved from; the order of requirements is formatting."""
    return "sha256:" + sha256_hex(sorted(r.replace(" ", "") for r in requirements))


def lock_digest(packages: Sequence[str]) -> str:
    """The lock's content identity (part of a locked provider's identity)."""
    return "sha256:" + sha256_hex(sorted(packages))


def render_lock(
    provider: str, requirements: Sequence[str], packages: Sequence[str], python: str, platform: str
) -> str:
    header = [
        f"# evalhub lock of provider {provider}: written by `evalhub lock {provider}`; "
        "do not edit, run it again.",
        f"# format: {LOCK_FORMAT}",
        f"# requirements: {requirements_digest(requirements)}",
        f"# python: {python}",
        f"# platform: {platform}",
    ]
    return "\n".join([*header, *sorted(packages)]) + "\n"


def parse_lock(text: str, file: str) -> tuple[ProviderLock | None, list[Diagnostic]]:
    """A lock file's content, or the problems that make it unusable (with their lines)."""
    fields: dict[str, str] = {}
    packages: list[str] = []
    problems: list[Diagnostic] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if match := _HEADER.match(line):
                fields[match.group(1)] = match.group(2)
            continue
        if not _PIN.match(line):
            problems.append(
                Diagnostic(
                    file,
                    number,
                    1,
                    "",
                    f"not an exact pin `name==version`: {line!r}",
                    "write the lock again with `evalhub lock PROVIDER` instead of editing it",
                )
            )
            continue
        packages.append(line)
    if "requirements" not in fields:
        problems.append(
            Diagnostic(
                file,
                1,
                1,
                "",
                "no `# requirements: sha256:…` line: not written by `evalhub lock`",
                "write the lock again with `evalhub lock PROVIDER`",
            )
        )
    if problems:
        return None, problems
    return ProviderLock(
        tuple(sorted(packages)),
        fields["requirements"],
        fields.get("python", ""),
        fields.get("platform", ""),
    ), []


@dataclass
class LockCheck:
    locks: dict[str, ProviderLock]  # provider name -> its current (not stale) lock
    errors: list[Diagnostic]  # unreadable or stale locks
    notes: list[Diagnostic]  # providers with requirements and no lock


def check_locks(
    providers: Mapping[str, Located[Provider]], texts: Mapping[str, str | None]
) -> LockCheck:
    """Each provider's lock from `texts` (lock_file path -> content, None: no such file)."""
    check = LockCheck({}, [], [])
    for name, located in sorted(providers.items()):
        requirements = located.spec.spec.requirements
        if not requirements:
            continue
        path = lock_file(located)
        line, column = located.doc.position(("spec", "requirements"))
        fix = f"run `evalhub lock {name}` and commit {path}"
        text = texts.get(path)
        if text is None:
            check.notes.append(
                Diagnostic(
                    located.doc.file,
                    line,
                    column,
                    "spec.requirements",
                    f"provider {name!r} has requirements but no lock: what they resolve to "
                    "can change while its fingerprints stay the same",
                    fix,
                )
            )
            continue
        lock, problems = parse_lock(text, path)
        if lock is None:
            check.errors.extend(problems)
            continue
        if lock.requirements != requirements_digest(requirements):
            check.errors.append(
                Diagnostic(
                    located.doc.file,
                    line,
                    column,
                    "spec.requirements",
                    f"the lock {path} was resolved from other requirements than provider "
                    f"{name!r} lists now (stale lock)",
                    fix,
                )
            )
            continue
        check.locks[name] = lock
    return check
