"""A managed environment keeps its lock (every installed distribution's exact version): a unit
run records its digest, and an environment whose installed packages drift from its lock is
rebuilt. The build commands are simulated (no pip here): the store's own logic is under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.adapters.environments import MARKER, EnvironmentStore, installed, lock
from evalhub.core import records
from evalhub.core.canonical import sha256_hex
from evalhub.core.errors import ExecutionError


class SimulatedStore(EnvironmentStore):
    """Builds by creating what venv and pip would: site-packages with a dist-info per pin."""

    builds = 0

    def __init__(self, root: Path) -> None:
        super().__init__(root, python="python3", installer="pip")

    def _run(self, command: list[str], log: Path | None, *rest: object) -> str:  # type: ignore[override]
        if command[1:3] == ["-m", "venv"]:
            type(self).builds += 1
            (Path(command[3]) / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
            return ""
        env = Path(command[0]).parent.parent
        site = env / "lib" / "python3.11" / "site-packages"
        pins = command[command.index("--disable-pip-version-check") + 1 :]
        if pins[:2] == ["--no-deps", "-r"]:  # a build from a lock file
            pins = Path(pins[2]).read_text().split()
        for requirement in pins:
            name, _, version = requirement.partition("==")
            (site / f"{name.replace('-', '_')}-{version}.dist-info").mkdir()
        return ""

    @staticmethod
    def _freeze(env: Path) -> list[str]:
        return installed(env)


def test_the_lock_is_kept_checked_and_a_drifted_environment_rebuilt(tmp_path: Path) -> None:
    store = SimulatedStore(tmp_path / "envs")
    steps: list[str] = []
    env = store.ensure(["tiny-pkg==1.0", "other==2"], step=steps.append)
    assert env is not None and SimulatedStore.builds == 1
    assert lock(env) == ["other==2", "tiny-pkg==1.0"]
    assert steps == ["creating the virtualenv", "installing tiny-pkg==1.0 other==2 with pip"]
    # ready: not rebuilt, no step reported
    steps.clear()
    assert store.ensure(["tiny-pkg==1.0", "other==2"], step=steps.append) == env
    assert SimulatedStore.builds == 1 and steps == []
    # something installed into it since: its packages no longer match the lock -> rebuilt
    (env / "lib" / "python3.11" / "site-packages" / "intruder-9.dist-info").mkdir()
    assert store.ensure(["tiny-pkg==1.0", "other==2"], step=steps.append) == env
    assert SimulatedStore.builds == 2
    assert steps[0] == "its installed packages differ from its lock: rebuilding"
    assert "intruder==9" not in lock(env)


def test_an_environment_built_before_locks_takes_its_lock_without_a_rebuild(
    tmp_path: Path,
) -> None:
    store = SimulatedStore(tmp_path / "envs")
    env = store.ensure(["tiny-pkg==1.0"])
    assert env is not None
    builds = SimulatedStore.builds
    marker = json.loads((env / MARKER).read_text())
    del marker["lock"]
    (env / MARKER).write_text(json.dumps(marker))
    assert store.ensure(["tiny-pkg==1.0"]) == env and SimulatedStore.builds == builds
    assert lock(env) == ["tiny-pkg==1.0"]


def test_a_unit_records_the_digest_of_its_environments_lock(tmp_path: Path) -> None:
    from evalhub.core.runs import unit_outcome
    from tests.core.test_records import result, scheduled, unit_job

    job = unit_job(scheduled().evaluation, tmp_path, tmp_path, key="faq", environment="/envs/a")
    outcome = unit_outcome(job, result({"contains": 0.5}), {}, ["b==2", "a==1"])
    assert outcome.tags[records.ENVIRONMENT_LOCK] == sha256_hex(["a==1", "b==2"])
    unlocked = unit_outcome(job, result({"contains": 0.5}), {})
    assert records.ENVIRONMENT_LOCK not in unlocked.tags  # no environment, no lock


def test_an_environment_with_a_lock_holds_exactly_the_lock_and_is_keyed_by_it(
    tmp_path: Path,
) -> None:
    store = SimulatedStore(tmp_path / "envs")
    unlocked = store.ensure(["tiny-pkg>=1"])
    steps: list[str] = []
    locked = store.ensure(["tiny-pkg>=1"], step=steps.append, lock=["tiny-pkg==1.2", "dep==3"])
    assert locked is not None and locked != unlocked  # another lock, another environment
    assert lock(locked) == ["dep==3", "tiny-pkg==1.2"]
    assert steps == ["creating the virtualenv", "installing the 2 packages of its lock with pip"]
    # the unlocked environment keeps the key it always had (no rebuild of existing caches)
    assert unlocked == store.path_for(["tiny-pkg>=1"])
    relocked = store.ensure(["tiny-pkg>=1"], lock=["tiny-pkg==1.3", "dep==3"])
    assert relocked not in (locked, unlocked) and lock(relocked) == ["dep==3", "tiny-pkg==1.3"]


def test_a_build_that_does_not_reproduce_its_lock_fails_with_what_differs(
    tmp_path: Path,
) -> None:
    class Lossy(SimulatedStore):  # an installer that also drags in a package not locked
        def _run(self, command: list[str], log: Path | None, *rest: object) -> str:  # type: ignore[override]
            out = super()._run(command, log)
            if "-r" in command:
                site = Path(command[0]).parent.parent / "lib" / "python3.11" / "site-packages"
                (site / "stray-1.dist-info").mkdir()
            return out

    store = Lossy(tmp_path / "envs")
    with pytest.raises(ExecutionError) as failed:
        store.ensure(["tiny-pkg>=1"], lock=["tiny-pkg==1.2"])
    assert "installed but not locked ['stray==1']" in failed.value.message
    assert "evalhub lock" in failed.value.hint
    assert not store.path_for(["tiny-pkg>=1"], ["tiny-pkg==1.2"]).exists()  # never moved in
