"""Units run as their environments become ready: a unit that needs no build runs while another
provider's environment is still building, builds run in parallel, and each build's steps and
end reach the display."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from evalhub.app.apply import ApplyOptions, apply
from evalhub.app.project import load_project
from evalhub.core.job import JobResults, JobSpec
from evalhub.ports import ExecutionEvents
from tests.fakes import MemoryStateStore, ScriptedExecutor
from tests.project import make_project

URL = "http://127.0.0.1:9/v1"
QA, REFUSALS = "quality/returns-qa", "quality/refusals"
SCRIPT = {QA: {"contains": 1.0}, REFUSALS: {"refusal": 0.5}}


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


def with_environment(root: Path) -> Path:
    """The refusals benchmark moves to a provider with requirements (a managed environment)."""
    providers = root / "evals" / "providers.yaml"
    providers.write_text(
        """apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: builtin}
spec:
  adapter: builtin
  benchmarks:
    - {id: returns-qa, primary_metric: contains, dataset: data/qa.jsonl, params: {scorer: contains}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: judged}
spec:
  adapter: builtin
  requirements: ["slow-framework==1.0"]
  benchmarks:
    - {id: refusals, primary_metric: refusal, dataset: data/refusals.jsonl, params: {scorer: refusal}}
"""
    )
    collections = root / "evals" / "collections.yaml"
    collections.write_text(
        collections.read_text().replace(
            "{provider: builtin, benchmark: refusals", "{provider: judged, benchmark: refusals"
        )
    )
    return root


class SlowEnvironments:
    """Builds the one environment only once `release` is set (within 10 s, else it fails)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.release = threading.Event()

    def ensure(
        self,
        requirements: list[str],
        log: Path | None = None,
        step: Callable[[str], None] | None = None,
        lock: Sequence[str] = (),
    ) -> Path | None:
        if not requirements:
            return None
        assert step is not None
        step("installing " + " ".join(requirements))
        if not self.release.wait(10):
            raise AssertionError("the build was never overlapped with a unit run")
        env = self.root / "env"
        env.mkdir(exist_ok=True)
        return env


class BatchExecutor(ScriptedExecutor):
    def __init__(self, environments: SlowEnvironments) -> None:
        super().__init__(SCRIPT)
        self.environments = environments
        self.batches: list[list[str]] = []

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        self.batches.append([job.unit for job in jobs])
        results = super().run(jobs, events)
        self.environments.release.set()  # the build finishes only after this batch ran
        return results


class Display:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def environment_step(self, name: str, step: str) -> None:
        self.events.append(("step", name, step))

    def environment_done(self, name: str, error: str | None) -> None:
        self.events.append(("done", name, str(error)))


def test_a_unit_needing_no_build_runs_while_an_environment_builds(tmp_path: Path) -> None:
    root = with_environment(make_project(tmp_path, URL))
    environments = SlowEnvironments(tmp_path)
    executor = BatchExecutor(environments)
    display = Display()
    report = apply(
        load_project(root),
        ApplyOptions(environment_events=display),
        MemoryStateStore(),
        executor,
        environments,
    )
    assert executor.batches == [[QA], [REFUSALS]]
    assert [u.status for u in report.units] == ["succeeded", "succeeded"]
    assert display.events == [
        ("step", "environment judged", "installing slow-framework==1.0"),
        ("done", "environment judged", "None"),
    ]
    (evaluation,) = report.evaluations
    assert evaluation.score is not None and evaluation.units_run == 2
