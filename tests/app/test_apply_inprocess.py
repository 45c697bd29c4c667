"""`apply` in process, through its seams: an in-memory state store and a scripted executor
(tests/fakes.py). What is recorded, and when — each unit once, tags per the contract of
core/records.py, rescore without the executor, retry of failed units only, an interrupted apply
leaving nothing that looks done, and a unit result altered in the store never used.

tests/app/test_apply.py tells the same stories end to end (CLI, real MLflow, run-unit processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.app.apply import ApplyOptions, ApplyReport, apply
from evalhub.app.plan import StalePlanError, current_plan_for, make_project_plan
from evalhub.app.project import load_project
from evalhub.core import records
from evalhub.core.job import JobResults, JobSpec
from evalhub.core.plan import EvaluationAction
from evalhub.ports import StateStore
from tests.fakes import (
    MemoryStateStore,
    NoEnvironments,
    ScriptedExecutor,
    StoredRun,
    failing,
    succeeded,
)
from tests.project import make_project

URL = "http://127.0.0.1:9/v1"  # nothing listens: the endpoint facts record the refusal
QA, REFUSALS = "quality/returns-qa", "quality/refusals"
GOOD = {QA: {"contains": 1.0}, REFUSALS: {"refusal": 0.5}}


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path, URL)


def run(root: Path, store: StateStore, executor: ScriptedExecutor) -> ApplyReport:
    return apply(load_project(root), ApplyOptions(), store, executor, NoEnvironments())


def plan_of(root: Path, store: StateStore) -> EvaluationAction:
    (action,) = make_project_plan(load_project(root), store=store, publishing=False).plan.actions
    return action


def reweigh(root: Path) -> None:
    collections = root / "evals" / "collections.yaml"
    collections.write_text(collections.read_text().replace("weight: 2", "weight: 1"))


def aggregate(report: ApplyReport) -> float | None:
    (evaluation,) = report.evaluations
    assert evaluation.score is not None
    return evaluation.score.aggregate


def tamper(run: StoredRun, metric: str, value: float) -> None:
    """An edit made in the store behind evalhub's back (the MLflow UI, a script)."""
    run.metrics[metric] = value


# -- recording ---------------------------------------------------------------------------------


def test_each_unit_is_recorded_once_with_the_tags_of_the_contract(root: Path) -> None:
    store, executor = MemoryStateStore(), ScriptedExecutor(GOOD)
    report = run(root, store, executor)

    assert sorted(executor.ran) == [REFUSALS, QA]
    (evaluation,) = store.of_kind("evaluation")
    units = {u.name: u for u in store.of_kind("unit")}
    assert sorted(units) == [REFUSALS, QA]
    for name, unit in units.items():
        assert unit.status == "succeeded" and unit.parent_run_id == evaluation.run_id
        assert unit.tags[records.HEAD] == "true"
        assert unit.tags[records.KIND] == "unit" and unit.tags[records.NAME] == name
        assert unit.tags[records.PROVIDER] == "builtin"
        assert unit.tags[records.BENCHMARK] == name.split("/")[1]
        assert unit.tags[records.FRAMEWORK_VERSION] == "1.0-test"
        assert unit.tags[records.MODEL] == "assistant"
        assert unit.tags[records.COLLECTION] == "quality@1"
        assert unit.tags[records.RESULT_DIGEST] == records.result_digest("succeeded", unit.metrics)
        assert {"unit.json", "result.json", "environment.json", "endpoint.json"} <= set(
            unit.artifacts
        )
        assert "error" in json.loads(unit.artifacts["endpoint.json"])  # asked once, refused
    assert units[QA].metrics["contains"] == 1.0 and units[QA].metrics["score"] == 1.0
    assert units[REFUSALS].metrics["samples"] == 3.0
    assert evaluation.tags[records.ACTION] == "create"
    assert evaluation.tags[records.VERDICT] == "pass"
    assert evaluation.status == "succeeded"
    # the weighted mean of the recorded scores (returns-qa weighs 2, refusals 1)
    assert evaluation.metrics["aggregate"] == pytest.approx((2 * 1.0 + 0.5) / 3)
    assert float(evaluation.tags[records.BASELINE]) == evaluation.metrics["aggregate"]
    written = {t for r in store.runs.values() for t in r.tags if t.startswith("evalhub.")}
    # the unit runs an evaluation scored: a family of tags, one per entry
    links = {t for t in written if t.startswith(records.UNIT_RUN_PREFIX)}
    assert links == {records.UNIT_RUN_PREFIX + "returns-qa", records.UNIT_RUN_PREFIX + "refusals"}
    assert {evaluation.tags[t] for t in links} == {u.run_id for u in units.values()}
    assert written - links <= set(records.TAGS)  # every tag evalhub writes is in the contract
    assert [(u.key, u.status) for u in sorted(report.units, key=lambda u: u.key)] == [
        ("refusals", "succeeded"),
        ("returns-qa", "succeeded"),
    ]
    (entry,) = report.evaluations
    assert (entry.units_run, entry.units_failed, entry.run_id) == (2, 0, evaluation.run_id)
    ledger = json.loads((root / "results" / "quality.json").read_text())
    assert ledger["mlflow"]["unit_runs"] == {
        "refusals": units[REFUSALS].run_id,
        "returns-qa": units[QA].run_id,
    }

    again = ScriptedExecutor()  # nothing may run
    report = run(root, store, again)
    assert again.ran == [] and report.evaluations == []
    assert plan_of(root, store).action == "noop"
    assert len(store.runs) == 3


def test_repeated_executor_events_record_a_unit_once(root: Path) -> None:
    store = MemoryStateStore()  # raises when a run is finished twice
    run(root, store, ScriptedExecutor(GOOD, repeat_events=True))
    assert sorted(u.name for u in store.of_kind("unit")) == [REFUSALS, QA]
    assert len(store.of_kind("evaluation")) == 1


def test_a_unit_shared_by_two_evaluations_runs_and_is_recorded_once(root: Path) -> None:
    evaluations = root / "evals" / "evaluations.yaml"
    text = evaluations.read_text()
    evaluations.write_text(text + "---\n" + text.replace("name: quality", "name: quality-copy"))
    store, executor = MemoryStateStore(), ScriptedExecutor(GOOD)
    report = run(root, store, executor)
    assert sorted(executor.ran) == [REFUSALS, QA]
    assert len(store.of_kind("unit")) == 2
    assert [e.score.verdict for e in report.evaluations if e.score] == ["pass", "pass"]
    assert {e.name: e.units_run for e in report.evaluations} == {"quality": 2, "quality-copy": 0}


def test_a_provider_environment_that_cannot_be_built_fails_its_units_without_running(
    root: Path,
) -> None:
    providers = root / "evals" / "providers.yaml"
    providers.write_text(
        providers.read_text().replace("adapter: builtin", "adapter: builtin\n  requirements: [x]")
    )
    store, executor = MemoryStateStore(), ScriptedExecutor()
    report = apply(load_project(root), ApplyOptions(), store, executor, NoEnvironments({"x"}))
    assert executor.ran == []
    assert {u.status for u in store.of_kind("unit")} == {"failed"}
    assert all("cannot install x" in (u.error or "") for u in report.failed_units)
    (evaluation,) = store.of_kind("evaluation")
    assert evaluation.status == "failed"
    assert "units without a result" in evaluation.tags[records.ERROR]


# -- rescore and retry -------------------------------------------------------------------------


def test_weight_change_rescores_without_calling_the_executor(root: Path) -> None:
    store = MemoryStateStore()
    first = run(root, store, ScriptedExecutor(GOOD))
    reweigh(root)
    assert plan_of(root, store).action == "rescore"
    executor = ScriptedExecutor()
    report = run(root, store, executor)
    assert executor.ran == []
    assert aggregate(first) == pytest.approx(2.5 / 3)
    assert aggregate(report) == pytest.approx(1.5 / 2)  # the same scores, now equally weighted
    rescored = store.head("evaluation", "quality")
    assert rescored.tags[records.ACTION] == "rescore"
    assert len(store.of_kind("evaluation")) == 2 and len(store.of_kind("unit")) == 2
    assert plan_of(root, store).action == "noop"


def test_a_failed_unit_is_retried_alone_and_the_others_reused(root: Path) -> None:
    store = MemoryStateStore()
    report = run(root, store, ScriptedExecutor({QA: GOOD[QA], REFUSALS: failing("HTTP 503")}))
    assert [(u.key, u.error) for u in report.failed_units] == [("refusals", "HTTP 503")]
    assert store.head("evaluation", "quality").status == "failed"
    action = plan_of(root, store)
    assert action.action == "retry" and [u.unit for u in action.units] == [REFUSALS]

    executor = ScriptedExecutor({REFUSALS: GOOD[REFUSALS]})
    report = run(root, store, executor)
    assert executor.ran == [REFUSALS]
    assert report.failed_units == [] and aggregate(report) == pytest.approx(2.5 / 3)
    assert [u.status for u in store.of_kind("unit", REFUSALS)] == ["failed", "succeeded"]
    assert len(store.of_kind("unit", QA)) == 1  # reused, not run again


# -- interruption ------------------------------------------------------------------------------


def test_an_interrupted_apply_leaves_nothing_done_and_the_next_one_finishes(root: Path) -> None:
    store = MemoryStateStore()
    executor = ScriptedExecutor({QA: GOOD[QA]}, interrupt_at=REFUSALS)
    with pytest.raises(KeyboardInterrupt):
        run(root, store, executor)
    assert executor.ran == [QA, REFUSALS]  # Ctrl-C while the second unit ran
    assert [r.status for r in store.of_kind("evaluation")] == ["failed"]
    assert not any(r.status == "running" for r in store.runs.values())
    assert {u.name: u.status for u in store.of_kind("unit")} == {
        QA: "succeeded",
        REFUSALS: "failed",
    }
    assert plan_of(root, store).action == "retry"

    executor = ScriptedExecutor({REFUSALS: GOOD[REFUSALS]})
    run(root, store, executor)
    assert executor.ran == [REFUSALS]
    done = sorted(u.name for u in store.of_kind("unit") if u.status == "succeeded")
    assert done == [REFUSALS, QA]  # exactly once each
    assert store.head("evaluation", "quality").status == "succeeded"


def test_a_unit_whose_executor_stopped_without_reporting_its_end_is_not_left_running(
    root: Path,
) -> None:
    store = MemoryStateStore()
    executor = ScriptedExecutor({QA: GOOD[QA]}, interrupt_at=REFUSALS, report_interrupted=False)
    with pytest.raises(KeyboardInterrupt):
        run(root, store, executor)
    assert {r.name: r.status for r in store.runs.values()} == {
        "quality": "failed",
        QA: "succeeded",
        REFUSALS: "failed",
    }
    assert "interrupted" in store.head("unit", REFUSALS).tags[records.ERROR]
    assert plan_of(root, store).action == "retry"


# -- a recorded result altered in the store (issue 12, item 4) ---------------------------------


def test_rescore_refuses_a_unit_result_altered_in_the_store(root: Path) -> None:
    store = MemoryStateStore()
    run(root, store, ScriptedExecutor({QA: {"contains": 0.2}, REFUSALS: GOOD[REFUSALS]}))
    original = store.head("unit", QA)
    tamper(original, "contains", 1.0)  # a failing benchmark made to pass
    reweigh(root)

    action = plan_of(root, store)
    assert action.action == "run"  # not rescore: that result may not be used
    (unit,) = action.units
    assert unit.unit == QA
    assert unit.reasons == [
        f"recorded result altered in the store (run {original.run_id}: its metrics or status "
        "no longer match the digest recorded when it finished)"
    ]
    executor = ScriptedExecutor({QA: {"contains": 0.2}})
    report = run(root, store, executor)
    assert executor.ran == [QA]  # re-run: the altered result is never scored
    assert aggregate(report) == pytest.approx((0.2 + 0.5) / 2)
    assert store.head("unit", QA).run_id != original.run_id
    assert original.metrics["contains"] == 1.0  # kept as it is: evidence of the edit
    assert plan_of(root, store).action == "noop"


def test_a_result_altered_while_apply_runs_fails_the_evaluation_naming_the_run(
    root: Path,
) -> None:
    store = MemoryStateStore()
    run(root, store, ScriptedExecutor(GOOD))
    reused = store.head("unit", REFUSALS)
    data = root / "evals" / "data" / "qa.jsonl"
    data.write_text(data.read_text() + data.read_text().splitlines()[0].replace("r1", "r4") + "\n")

    def meanwhile(job: JobSpec) -> JobResults:
        tamper(reused, "refusal", 1.0)  # after the plan, before scoring
        return succeeded(job, GOOD[QA])

    report = run(root, store, ScriptedExecutor({QA: meanwhile}))
    (entry,) = report.evaluations
    assert entry.score is not None and entry.score.verdict == "fail"
    assert entry.ledger is None  # an incomplete result is not written down
    evaluation = store.head("evaluation", "quality")
    assert evaluation.status == "failed"
    assert f"refusals (run {reused.run_id})" in evaluation.tags[records.ERROR]
    assert "altered in the store" in evaluation.tags[records.ERROR]


def test_a_plan_saved_before_a_result_was_altered_is_refused(root: Path) -> None:
    store = MemoryStateStore()
    run(root, store, ScriptedExecutor(GOOD))
    reweigh(root)
    saved = make_project_plan(load_project(root), store=store, publishing=False).saved()
    tamper(store.head("unit", QA), "contains", 0.0)
    with pytest.raises(StalePlanError, match="the recorded runs changed since it was made"):
        current_plan_for(load_project(root), saved, store, publishing=False)


def test_a_status_flipped_to_succeeded_in_the_store_is_not_used(root: Path) -> None:
    store = MemoryStateStore()
    run(root, store, ScriptedExecutor({QA: GOOD[QA], REFUSALS: failing("HTTP 503")}))
    failed = store.head("unit", REFUSALS)
    failed.status = "succeeded"  # MLflow: set_terminated(run, "FINISHED")
    failed.metrics["refusal"] = 1.0
    action = plan_of(root, store)
    assert [u.unit for u in action.units] == [REFUSALS]
    assert f"run {failed.run_id}" in action.units[0].reasons[0]


def test_a_unit_recorded_without_a_digest_by_an_older_evalhub_is_still_used(root: Path) -> None:
    store = MemoryStateStore()
    run(root, store, ScriptedExecutor(GOOD))
    for unit in store.of_kind("unit"):
        del unit.tags[records.RESULT_DIGEST]
    reweigh(root)
    assert plan_of(root, store).action == "rescore"
    executor = ScriptedExecutor()
    report = run(root, store, executor)
    assert executor.ran == [] and aggregate(report) == pytest.approx(1.5 / 2)


def test_rescore_refuses_a_unit_result_altered_in_the_mlflow_store(root: Path) -> None:
    """The same story on the real store: MLflow over SQLite, the metric edited with
    MlflowClient (what someone with write access to the tracking server can do)."""
    from mlflow import MlflowClient

    from evalhub.adapters.mlflow_store import MlflowStateStore

    uri = f"sqlite:///{(root / '.evalhub' / 'mlflow.db').as_posix()}"
    store = MlflowStateStore.open(uri, root / ".evalhub" / "artifacts")
    run(root, store, ScriptedExecutor({QA: {"contains": 0.2}, REFUSALS: GOOD[REFUSALS]}))
    original = store.read(()).unit_heads()[QA]
    MlflowClient(uri).log_metric(original.run_id, "contains", 1.0)
    reweigh(root)

    action = plan_of(root, store)
    assert action.action == "run" and [u.unit for u in action.units] == [QA]
    assert (
        f"recorded result altered in the store (run {original.run_id}"
        in (action.units[0].reasons[0])
    )
    executor = ScriptedExecutor({QA: {"contains": 0.2}})
    report = run(root, store, executor)
    assert executor.ran == [QA]
    assert aggregate(report) == pytest.approx((0.2 + 0.5) / 2)
    assert plan_of(root, store).action == "noop"
    rerun = store.read(()).unit_heads()[QA]  # what MLflow reads back digests as was written
    assert rerun.tags[records.RESULT_DIGEST] == records.result_digest("succeeded", rerun.metrics)
