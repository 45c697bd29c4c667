"""Provider locks: parsing, digests, staleness and identity (core/provider_lock.py). A lock
is part of a provider's identity only when it exists: providers without one keep theirs."""

from __future__ import annotations

from evalhub.core.fingerprint import provider_identity, unit_fingerprint
from evalhub.core.provider_lock import (
    check_locks,
    lock_digest,
    lock_file,
    parse_lock,
    render_lock,
    requirements_digest,
)
from evalhub.core.resolve import provider_lock_key
from tests.core.test_fingerprint import BASELINE, DIGESTS, prints, resolved
from tests.specs import BASE, PROVIDER, edit, validate

OTHERS = [text for text in BASE if text != PROVIDER]
PINS = ["pip==23.2.1", "torch==2.13.0+cpu", "guidellm==0.8.1"]
REQS = ["torch==2.13.0", "guidellm==0.8.1"]


def test_a_rendered_lock_parses_back_sorted_with_its_requirements_digest() -> None:
    text = render_lock("perf", REQS, PINS, "3.11", "linux-x86_64")
    lock, problems = parse_lock(text, "evals/perf.lock")
    assert problems == [] and lock is not None
    assert lock.packages == tuple(sorted(PINS))
    assert lock.requirements == requirements_digest(list(reversed(REQS)))  # order: formatting
    assert (lock.python, lock.platform) == ("3.11", "linux-x86_64")
    assert lock_digest(PINS) == lock_digest(sorted(PINS)) != lock_digest(PINS[:2])


def test_an_edited_lock_is_refused_at_its_line() -> None:
    text = render_lock("perf", REQS, PINS, "3.11", "linux-x86_64") + "numpy>=2\n"
    lock, problems = parse_lock(text, "evals/perf.lock")
    assert lock is None
    (problem,) = problems
    assert problem.location() == f"evals/perf.lock:{len(text.splitlines())}:1"
    assert "numpy>=2" in problem.message and "evalhub lock" in problem.hint
    _, unsigned = parse_lock("six==1.16.0\n", "x.lock")
    assert "requirements" in unsigned[0].message


def providers(requirements: list[str]):  # type: ignore[no-untyped-def]
    specs = validate(*OTHERS, edit(PROVIDER, spec__requirements=requirements)).specs
    return specs.providers


def test_missing_current_and_stale_locks() -> None:
    located = providers(REQS)
    (name,) = located
    path = lock_file(located[name])
    assert path == f"evals/{name}.lock"  # beside the spec file that defines the provider
    missing = check_locks(located, {})
    assert missing.locks == {} and missing.errors == []
    (note,) = missing.notes
    assert note.path == "spec.requirements" and note.line > 0 and note.column > 0
    assert note.hint == f"run `evalhub lock {name}` and commit {path}"

    current = check_locks(located, {path: render_lock(name, REQS, PINS, "3.11", "x")})
    assert current.locks[name].packages == tuple(sorted(PINS)) and not current.notes

    stale = check_locks(located, {path: render_lock(name, ["torch==2.13.0"], PINS, "3.11", "x")})
    (error,) = stale.errors
    assert "stale lock" in error.message and error.file == note.file
    assert (error.line, error.column) == (note.line, note.column)
    assert stale.locks == {}


def test_a_provider_without_requirements_needs_no_lock() -> None:
    assert check_locks(providers([]), {}).notes == []


def test_the_lock_digest_is_identity_only_when_there_is_a_lock() -> None:
    name = next(iter(providers(REQS)))
    spec = (*OTHERS, edit(PROVIDER, spec__requirements=REQS))
    unlocked = resolved(*spec)
    assert "lock" not in provider_identity(unlocked.units[0])
    assert prints(resolved(*BASE)) == BASELINE  # no lock anywhere: golden values unchanged

    def with_lock(pins: list[str]) -> str:
        digests = {**DIGESTS, provider_lock_key(name): "\n".join(sorted(pins))}
        return unit_fingerprint(resolved(*spec, digests=digests).units[0])

    plain = unit_fingerprint(unlocked.units[0])
    assert with_lock(PINS) != plain  # locking re-plans the provider's units
    assert with_lock(PINS) == with_lock(list(reversed(PINS)))  # same lock, same identity
    assert with_lock(PINS) != with_lock([*PINS[:2], "guidellm==0.8.2"])  # another environment
    assert provider_identity(
        resolved(*spec, digests={**DIGESTS, provider_lock_key(name): "\n".join(PINS)}).units[0]
    )["lock"] == lock_digest(PINS)
