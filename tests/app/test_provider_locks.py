"""`evalhub lock` writes a provider's lock beside its spec; validate and plan say when a provider
with requirements has none (a note) or when it is stale (an error at file:line:column with the
command to run); a current lock is part of the provider's units' identity and reaches the
environment store. Environments are simulated (tests/adapters/test_environment_lock.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalhub.app.project import load_project
from evalhub.app.provider_locks import lock_providers
from evalhub.app.specs import resolved_evaluations
from evalhub.core.errors import ConfigError
from evalhub.core.fingerprint import unit_fingerprint
from evalhub.core.provider_lock import lock_digest
from tests.adapters.test_environment_lock import SimulatedStore
from tests.conftest import run_cli
from tests.project import make_project


def with_requirements(root: Path, requirements: str) -> None:
    providers = root / "evals" / "providers.yaml"
    text = providers.read_text().split("  requirements:")[0]
    providers.write_text(f"{text}  requirements: {requirements}\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_project(tmp_path, "http://127.0.0.1:9/v1")
    with_requirements(tmp_path, '["tiny-pkg==1.0", "other==2"]')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fingerprints(root: Path) -> set[str]:
    project = load_project(root)
    evaluations = resolved_evaluations(project, project.spec_source())
    return {unit_fingerprint(u) for e in evaluations for u in e.units}


def test_no_lock_is_a_note_then_locking_writes_it_and_changes_identity(project: Path) -> None:
    validated = run_cli("validate", cwd=project)
    assert validated.code == 0, validated.stdout
    assert "note: evals/providers.yaml:" in validated.stdout
    assert "provider 'builtin' has requirements but no lock" in validated.stdout
    assert "run `evalhub lock builtin` and commit evals/builtin.lock" in validated.stdout
    planned = run_cli("plan", cwd=project)
    assert (
        "note: evals/providers.yaml:" in planned.stderr and "evalhub lock builtin" in planned.stderr
    )
    before = fingerprints(project)

    steps: list[tuple[str, str]] = []
    store = SimulatedStore(project / "envs")
    (written,) = lock_providers(
        load_project(project), [], lambda n, t: steps.append((n, t)), environments=store
    )
    assert (written.provider, written.path, written.changed) == (
        "builtin",
        "evals/builtin.lock",
        True,
    )
    text = (project / "evals" / "builtin.lock").read_text()
    assert text.splitlines()[-2:] == ["other==2", "tiny-pkg==1.0"]  # what the build installed
    assert ("builtin", "creating the virtualenv") in steps

    validated = run_cli("validate", cwd=project)
    assert validated.code == 0 and "note:" not in validated.stdout
    project_ = load_project(project)
    (unit, *_) = [
        u for e in resolved_evaluations(project_, project_.spec_source()) for u in e.units
    ]
    assert unit.provider.lock == ("other==2", "tiny-pkg==1.0")
    after = fingerprints(project)
    assert after.isdisjoint(before)  # the locked provider's units plan to run again
    # locking again changes nothing (the same environment, the same file)
    (again,) = lock_providers(
        load_project(project), ["builtin"], lambda n, t: None, environments=store
    )
    assert not again.changed and fingerprints(project) == after


def test_a_stale_lock_fails_validate_and_plan_at_the_requirements(project: Path) -> None:
    lock_providers(
        load_project(project), [], lambda n, t: None, environments=SimulatedStore(project / "envs")
    )
    with_requirements(project, '["tiny-pkg==1.1", "other==2"]')
    for command in ("validate", "plan"):
        result = run_cli(command, cwd=project)
        assert result.code == 1, (command, result.stdout, result.stderr)
        shown = result.stdout + result.stderr
        assert "evals/providers.yaml:" in shown and "spec.requirements" in shown
        assert "stale lock" in shown and "run `evalhub lock builtin`" in shown
        assert "Traceback" not in shown


def test_the_lock_reaches_the_environment_store(project: Path) -> None:
    from evalhub.app.jobs import needs

    store = SimulatedStore(project / "envs")
    lock_providers(load_project(project), [], lambda n, t: None, environments=store)
    project_ = load_project(project)
    unit = resolved_evaluations(project_, project_.spec_source())[0].units[0]
    requirements, lock = needs(unit)
    builds = SimulatedStore.builds
    steps: list[str] = []
    env = store.ensure(list(requirements), step=steps.append, lock=lock)
    # the environment the lock was taken from is linked: nothing installed again
    assert steps == ["linking the environment its lock was taken from"]
    assert SimulatedStore.builds == builds
    assert env == store.path_for(list(requirements), lock) != store.path_for(list(requirements))
    assert lock_digest(lock) == lock_digest(["tiny-pkg==1.0", "other==2"])
    assert store.ensure(list(requirements), lock=lock) == env  # ready: kept


def test_an_unknown_provider_is_refused_with_a_suggestion(project: Path) -> None:
    with pytest.raises(ConfigError) as unknown:
        lock_providers(load_project(project), ["bultin"], lambda n, t: None)
    assert "did you mean 'builtin'" in unknown.value.hint
