"""What evalhub records, built from plain values (core/records.py, core/runs.py): no store,
no fixtures. The recorder only decides when these are written (tests/app/test_apply_inprocess.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evalhub.core import records
from evalhub.core.fingerprint import FINGERPRINT_VERSION, unit_fingerprint
from evalhub.core.job import JobResults, failed_result
from evalhub.core.plan import EvaluationAction, make_plan
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.runs import (
    RunFacts,
    Scheduled,
    baseline,
    evaluation_outcome,
    evaluation_run,
    flatten,
    recorded_results,
    unit_artifacts,
    unit_outcome,
    unit_run,
)
from evalhub.core.scoring import score_evaluation
from evalhub.core.state import RecordedRun, RunStatus, State
from tests.specs import BASE, unit_job, validate

FACTS = RunFacts(
    evalhub_version="9.9.9",
    commit="c0ffee",
    machine={"python": "3.11.9"},
    endpoints={"http://127.0.0.1:8000/v1": {"data": [{"id": "smollm2-135m"}]}},
    packages={"/envs/a": ["lm-eval==0.4.13"]},
)


def evaluation() -> ResolvedEvaluation:
    result = validate(*BASE)
    assert result.ok, result.diagnostics
    (only,) = resolve(result.specs, {"data/faq.jsonl": "sha256:" + "a" * 64})
    return only


def scheduled(action: str = "create") -> Scheduled:
    ev = evaluation()
    fingerprint = "e" * 64
    return Scheduled(
        ev,
        EvaluationAction(
            evaluation=ev.name,
            action=action,  # type: ignore[arg-type]
            fingerprint=fingerprint,
            recorded_fingerprint=None,
            units=[],
            reused=0,
            reasons=[],
        ),
    )


def result(metrics: dict[str, float], score: float | None = 0.5) -> JobResults:
    return JobResults(
        fingerprint="f" * 64,
        status="succeeded",
        metrics=metrics,
        primary_metric="contains",
        primary_value=metrics.get("contains"),
        score=score,
        samples=4,
        duration_seconds=1.5,
        framework="builtin",
        framework_version="1.2",
    )


def recorded(
    metrics: dict[str, float], status: RunStatus = "succeeded", digest: str | None = None
) -> RecordedRun:
    tags = {} if digest is None else {records.RESULT_DIGEST: digest}
    return RecordedRun(
        run_id="r1",
        kind="unit",
        name="assistant-quality/faq",
        evaluation="assistant-quality",
        fingerprint="f" * 64,
        fingerprint_version=FINGERPRINT_VERSION,
        status=status,
        started=1,
        metrics=metrics,
        tags=tags,
    )


# -- the digest of a unit's result -------------------------------------------------------------


def test_a_result_digest_changes_with_any_metric_or_the_status() -> None:
    metrics = {"contains": 0.5, "score": 0.5, "samples": 4.0}
    digest = records.result_digest("succeeded", metrics)
    assert digest == records.result_digest("succeeded", dict(reversed(metrics.items())))
    assert digest != records.result_digest("succeeded", {**metrics, "contains": 0.5000001})
    assert digest != records.result_digest("succeeded", {**metrics, "extra": 0.0})
    assert digest != records.result_digest("failed", metrics)
    assert digest != records.result_digest("succeeded", {"score": 0.5, "samples": 4.0})


def test_a_result_digest_holds_for_values_a_store_cannot_keep_exactly() -> None:
    # MLflow keeps NaN as NaN and an infinity as the largest float.
    written = {"nll": math.inf, "low": -math.inf, "x": math.nan}
    read_back = {"nll": 1.7976931348623157e308, "low": -1.7976931348623157e308, "x": math.nan}
    assert records.result_digest("succeeded", written) == records.result_digest(
        "succeeded", read_back
    )


def test_altered_compares_the_recorded_digest_and_trusts_runs_without_one() -> None:
    metrics = {"contains": 0.5}
    good = records.result_digest("succeeded", metrics)
    assert not records.altered(recorded(metrics, digest=good))
    assert records.altered(recorded({"contains": 0.9}, digest=good))
    assert records.altered(recorded(metrics, status="failed", digest=good))
    assert not records.altered(recorded({"contains": 0.9}))  # an older evalhub's run
    newest, older = recorded({"contains": 0.9}, digest=good), recorded(metrics, digest=good)
    assert records.usable([newest, older]) is older
    assert records.usable([newest]) is None


def test_metric_keys_are_kept_by_the_store_as_they_are() -> None:
    from evalhub.adapters.mlflow.values import key

    odd = ["exact_match,strip", "pass@k:k=1&n=1", "a//b", "/a", "a/", "..", "..a", "a/../b"]
    for name in [*odd, "", ".", "x" * 251, "x" * 250]:
        recorded_as = records.metric_key(name)
        assert key(recorded_as) == (recorded_as if records.recordable(recorded_as) else None)


# -- unit runs ---------------------------------------------------------------------------------


def test_a_unit_run_and_outcome_carry_the_contract_tags_and_the_digest(tmp_path: Path) -> None:
    item = scheduled()
    job = unit_job(item.evaluation, tmp_path, tmp_path, key="faq", environment="/envs/a")
    run = unit_run(job, item.evaluation, "parent", FACTS)
    tags = run.all_tags()
    assert run.parent_run_id == "parent" and run.experiment == "evalhub/assistant-quality"
    assert tags[records.PROVIDER] == "builtin" and tags[records.BENCHMARK] == "faq"
    assert tags[records.GIT_COMMIT] == "c0ffee" and tags[records.VERSION] == "9.9.9"
    assert tags[records.HEAD] == "false"  # head only once finished

    outcome = unit_outcome(job, result({"contains": 0.5, "exact_match,strip": 1.0}), {})
    assert outcome.metrics == {
        "contains": 0.5,
        "exact_match/strip": 1.0,
        "score": 0.5,
        "samples": 4.0,
        "duration_seconds": 1.5,
    }
    assert outcome.tags[records.RESULT_DIGEST] == records.result_digest(
        "succeeded", outcome.metrics
    )
    assert outcome.tags[records.FRAMEWORK_VERSION] == "1.2"
    assert outcome.params["benchmark"] == "faq" and "key" not in outcome.params
    assert set(tags) | set(outcome.tags) <= (
        set(records.TAGS) | set(records.MLFLOW_TAGS) | set(item.evaluation.experiment.tags)
    )
    assert tags[records.MLFLOW_GIT_COMMIT] == "c0ffee"
    assert tags[records.MLFLOW_SOURCE_NAME] == item.evaluation.source


def test_a_failed_unit_outcome_has_its_error_and_a_digest_of_its_status(tmp_path: Path) -> None:
    job = unit_job(scheduled().evaluation, tmp_path, tmp_path, key="faq")
    outcome = unit_outcome(job, failed_result(job, "HTTP 503"), {})
    assert outcome.status == "failed" and outcome.error == "HTTP 503"
    assert outcome.tags[records.RESULT_DIGEST] == records.result_digest("failed", outcome.metrics)


def test_unit_artifacts_carry_the_facts_gathered_before_execution(tmp_path: Path) -> None:
    import json

    job = unit_job(scheduled().evaluation, tmp_path, tmp_path, key="faq", environment="/envs/a")
    artifacts = unit_artifacts(job, result({"contains": 0.5}), FACTS, {"log.txt": b"hello"})
    environment = json.loads(artifacts["environment.json"])
    assert environment["python"] == "3.11.9"
    assert environment["environment_packages"] == ["lm-eval==0.4.13"]
    assert json.loads(artifacts["endpoint.json"]) == {"data": [{"id": "smollm2-135m"}]}
    assert artifacts["output/log.txt"] == b"hello"


def test_flatten_turns_a_spec_into_dotted_params() -> None:
    spec = {"model": {"revision": "v1", "defaults": {"temperature": 0}}, "files": {}, "x": None}
    assert flatten({**spec, "tags": [{"a": 1}], "ids": [1, 2]}) == {
        "model.revision": "v1",
        "model.defaults.temperature": "0",
        "tags": '[{"a":1}]',
        "ids": "[1,2]",
    }


# -- evaluation runs ---------------------------------------------------------------------------


def unit_runs(ev: ResolvedEvaluation, metrics: dict[str, float]) -> dict[str, list[RecordedRun]]:
    out = {}
    for i, unit in enumerate(ev.units):
        run = recorded(metrics, digest=records.result_digest("succeeded", metrics))
        out[unit_fingerprint(unit)] = [
            RecordedRun(
                **{**run.__dict__, "run_id": f"u{i}", "fingerprint": unit_fingerprint(unit)}
            )
        ]
    return out


def test_an_evaluation_outcome_records_verdict_baseline_and_publication() -> None:
    item = scheduled("rescore")
    run = evaluation_run(item, FACTS)
    assert run.all_tags()[records.ACTION] == "rescore" and run.fingerprint == "e" * 64
    found = recorded_results(item.evaluation, unit_runs(item.evaluation, {"contains": 1.0}))
    score = score_evaluation(item.evaluation, found.metrics)
    outcome = evaluation_outcome(item, score, found, 0.25, {records.SIGNER: "key"})
    assert found.problem() is None and outcome.status == "succeeded"
    assert outcome.tags[records.VERDICT] == score.verdict
    assert outcome.tags[records.SIGNER] == "key"
    expected = score.aggregate if score.verdict == "pass" else 0.25
    assert outcome.tags.get(records.BASELINE) == (None if expected is None else repr(expected))
    assert found.runs == {"faq": "u0", "tone": "u1"}


def test_an_evaluation_with_an_altered_unit_result_fails_naming_the_run() -> None:
    item = scheduled()
    runs = unit_runs(item.evaluation, {"contains": 1.0, "f1": 1.0})
    faq = unit_fingerprint(item.evaluation.units[0])
    (original,) = runs[faq]
    runs[faq] = [RecordedRun(**{**original.__dict__, "metrics": {"contains": 0.1}})]
    found = recorded_results(item.evaluation, runs)
    assert found.missing == ["faq"] and found.runs["faq"] is None
    outcome = evaluation_outcome(
        item, score_evaluation(item.evaluation, found.metrics), found, None, {}
    )
    assert outcome.status == "failed"
    assert outcome.error is not None and "faq (run u0)" in outcome.error


def test_baseline_reads_the_heads_tag_and_ignores_garbage() -> None:
    head = recorded({})
    assert baseline(None) is None and baseline(head) is None
    assert baseline(RecordedRun(**{**head.__dict__, "tags": {records.BASELINE: "0.75"}})) == 0.75
    assert baseline(RecordedRun(**{**head.__dict__, "tags": {records.BASELINE: "x"}})) is None


def test_the_plan_runs_a_unit_whose_recorded_result_was_altered() -> None:
    ev = evaluation()
    runs = unit_runs(ev, {"contains": 1.0, "f1": 1.0})
    faq = unit_fingerprint(ev.units[0])
    (original,) = runs[faq]
    runs[faq] = [RecordedRun(**{**original.__dict__, "metrics": {"contains": 0.1}, "head": True})]
    state = State(by_fingerprint=tuple(r for rs in runs.values() for r in rs))
    (action,) = make_plan([ev], state).actions
    assert [(u.key, u.status) for u in action.units] == [("faq", "run")]
    assert "recorded result altered in the store (run u0" in action.units[0].reasons[0]


@pytest.mark.parametrize("tag", sorted(records.TAGS))
def test_every_tag_of_the_contract_is_evalhubs(tag: str) -> None:
    assert tag.startswith(records.TAG_PREFIX)
