"""The planner: each action arises from the right edit, with the right reasons. Pure: the
recorded state is plain data here; tests/cli/test_plan_cli.py runs the same story on MLflow."""

from __future__ import annotations

import itertools

from evalhub.core.fingerprint import (
    FINGERPRINT_VERSION,
    evaluation_fingerprint,
    evaluation_identity,
    unit_fingerprint,
    unit_identity,
)
from evalhub.core.plan import Plan, make_plan
from evalhub.core.render_plan import plan_markdown, plan_text
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.state import RecordedRun, RunStatus, State
from tests.specs import BASE, COLLECTION, EVALUATION, MODEL, PROVIDER, edit, validate

DIGESTS = {"data/faq.jsonl": "sha256:" + "a" * 64}
_clock = itertools.count(1)


def resolved(*texts: str) -> list[ResolvedEvaluation]:
    result = validate(*texts)
    assert result.ok, result.diagnostics
    return resolve(result.specs, DIGESTS)


def record(
    evaluations: list[ResolvedEvaluation], unit_status: RunStatus = "succeeded"
) -> list[RecordedRun]:
    """What a finished apply of `evaluations` leaves in the store."""
    runs = []
    for ev in evaluations:
        for unit in ev.units:
            runs.append(
                RecordedRun(
                    run_id=f"r{next(_clock)}",
                    kind="unit",
                    name=f"{ev.name}/{unit.key}",
                    evaluation=ev.name,
                    fingerprint=unit_fingerprint(unit),
                    fingerprint_version=FINGERPRINT_VERSION,
                    status=unit_status,
                    started=next(_clock),
                    head=unit_status != "running",
                    identity=unit_identity(unit),
                )
            )
        runs.append(
            RecordedRun(
                run_id=f"r{next(_clock)}",
                kind="evaluation",
                name=ev.name,
                evaluation=ev.name,
                fingerprint=evaluation_fingerprint(ev),
                fingerprint_version=FINGERPRINT_VERSION,
                status="succeeded" if unit_status == "succeeded" else "failed",
                started=next(_clock),
                head=True,
                identity=evaluation_identity(ev),
            )
        )
    return runs


def state_of(*batches: list[RecordedRun]) -> State:
    """The store after several applies: heads are the newest run of each name."""
    runs = [r for batch in batches for r in batch]
    newest: dict[tuple[str, str], RecordedRun] = {}
    for run in runs:
        if run.head:
            newest[(run.kind, run.name)] = run
    heads = tuple(newest.values())
    return State(heads=heads, by_fingerprint=tuple(r for r in runs if r.kind == "unit"))


def plan_for(texts: list[str], *batches: list[RecordedRun]) -> Plan:
    return make_plan(resolved(*texts), state_of(*batches))


def only(plan: Plan) -> tuple[str, list[str], list[list[str]]]:
    (action,) = [a for a in plan.actions if a.action != "orphan"]
    return action.action, [u.key for u in action.units], [u.reasons for u in action.units]


def test_new_evaluation_is_create() -> None:
    plan = plan_for(BASE)
    assert only(plan)[:2] == ("create", ["faq", "tone"])
    assert plan.summary.create == 1 and plan.summary.units == 2
    assert plan.actions[0].units[0].reasons == ["never run"]


def test_recorded_evaluation_is_noop() -> None:
    plan = plan_for(BASE, record(resolved(*BASE)))
    assert only(plan)[:2] == ("noop", [])
    assert not plan.has_changes
    assert plan_text(plan) == "No changes. 1 evaluation up to date."


def test_model_revision_bump_runs_every_unit_naming_the_field() -> None:
    before = record(resolved(*BASE))
    plan = plan_for([edit(MODEL, spec__revision="v2"), PROVIDER, COLLECTION, EVALUATION], before)
    action, keys, reasons = only(plan)
    assert action == "run" and keys == ["faq", "tone"]
    assert reasons == [['model.revision: "v1" → "v2"'], ['model.revision: "v1" → "v2"']]


def test_new_benchmark_in_a_collection_runs_that_unit_only() -> None:
    before = record(resolved(*BASE))
    grown = edit(
        COLLECTION,
        spec__benchmarks=[
            {
                "provider": "builtin",
                "benchmark": "faq",
                "weight": 2,
                "threshold": 0.5,
                "params": {"scorer": "exact_match"},
            },
            {"provider": "builtin", "benchmark": "tone"},
            {
                "provider": "builtin",
                "benchmark": "tone",
                "name": "tone-strict",
                "params": {"strict": True},
            },
        ],
    )
    action, keys, reasons = only(plan_for([MODEL, PROVIDER, grown, EVALUATION], before))
    assert (action, keys, reasons) == ("run", ["tone-strict"], [["new benchmark"]])


def test_changed_params_name_the_param() -> None:
    before = record(resolved(*BASE))
    changed = COLLECTION.replace("params: {scorer: exact_match}", "params: {scorer: f1}")
    action, keys, reasons = only(plan_for([MODEL, PROVIDER, changed, EVALUATION], before))
    assert (action, keys) == ("run", ["faq"])
    assert reasons == [['params.scorer: "exact_match" → "f1"']]


def test_weight_or_threshold_change_is_rescore_without_units() -> None:
    before = record(resolved(*BASE))
    for collection, reason in [
        (COLLECTION.replace("weight: 2", "weight: 3"), "units.faq.weight: 2 → 3"),
        (COLLECTION.replace("threshold: 0.6", "threshold: 0.7"), "collection_threshold: 0.6 → 0.7"),
    ]:
        plan = plan_for([MODEL, PROVIDER, collection, EVALUATION], before)
        action, keys, _ = only(plan)
        assert (action, keys) == ("rescore", [])
        assert plan.actions[0].reasons == [reason]
        assert plan.summary.units == 0


def test_cosmetic_changes_are_noop() -> None:
    before = record(resolved(*BASE))
    cosmetic = [
        "# comment\n" + edit(MODEL, metadata__labels={"x": "y"}, spec__description="d"),
        PROVIDER,
        COLLECTION,
        edit(EVALUATION, spec__execution={"executor": "kubernetes", "concurrency": 9}),
    ]
    assert only(plan_for(cosmetic, before))[0] == "noop"


def test_deleted_spec_is_orphan() -> None:
    before = record(resolved(*BASE))
    plan = plan_for(
        [MODEL, PROVIDER, COLLECTION, EVALUATION.replace("assistant-quality", "renamed")], before
    )
    kinds = {a.evaluation: a.action for a in plan.actions}
    assert kinds == {"renamed": "create", "assistant-quality": "orphan"}
    # units are shared by content: the renamed evaluation reuses every recorded result
    renamed = next(a for a in plan.actions if a.evaluation == "renamed")
    assert renamed.units == [] and renamed.reused == 2


def test_failed_last_run_is_retry() -> None:
    failed = record(resolved(*BASE), unit_status="failed")
    plan = plan_for(BASE, failed)
    action, keys, reasons = only(plan)
    assert (action, keys) == ("retry", ["faq", "tone"])
    assert reasons[0][0].startswith("last attempt failed (run r")


def test_interrupted_run_is_retry_never_done() -> None:
    interrupted = record(resolved(*BASE), unit_status="running")
    action, keys, reasons = only(plan_for(BASE, interrupted))
    assert (action, keys) == ("retry", ["faq", "tone"])
    assert "interrupted" in reasons[0][0]


def test_an_older_success_is_reused_after_a_failed_retry() -> None:
    """Units reuse the older successes; only the verdict must be recomputed from them."""
    ok = record(resolved(*BASE))
    failed = record(resolved(*BASE), unit_status="failed")
    plan = plan_for(BASE, ok, failed)
    assert only(plan)[:2] == ("rescore", [])
    assert plan.actions[0].reasons[0].startswith("last scoring did not finish")


def test_other_fingerprint_version_is_never_equal() -> None:
    (ev,) = resolved(*BASE)
    old = [
        RecordedRun(
            run_id=f"old{i}",
            kind="unit",
            name=f"{ev.name}/{u.key}",
            evaluation=ev.name,
            fingerprint="0" * 64,
            fingerprint_version=0,
            status="succeeded",
            started=i,
            head=True,
        )
        for i, u in enumerate(ev.units)
    ]
    action, _, reasons = only(plan_for(BASE, old))
    assert action == "create"
    assert "fingerprint version 0" in reasons[0][0]


def test_a_unit_shared_by_two_evaluations_runs_once() -> None:
    twin = EVALUATION.replace("name: assistant-quality", "name: assistant-twin")
    plan = plan_for([*BASE, twin])
    assert plan.summary.units == 2
    statuses = {a.evaluation: [u.status for u in a.units] for a in plan.actions}
    assert statuses == {"assistant-quality": ["run", "run"], "assistant-twin": ["shared", "shared"]}


def test_selection_does_not_report_orphans() -> None:
    before = record(resolved(*BASE))
    plan = make_plan([], state_of(before), orphans=False)
    assert plan.actions == []


def test_renderings_carry_the_summary_and_reasons() -> None:
    before = record(resolved(*BASE))
    plan = plan_for([edit(MODEL, spec__revision="v2"), PROVIDER, COLLECTION, EVALUATION], before)
    text = plan_text(plan)
    assert "~ assistant-quality  run  (2 units)" in text
    assert 'model.revision: "v1" → "v2"' in text
    assert text.endswith("Plan: 0 to create, 1 to run (2 units), 0 to rescore, 0 unchanged.")
    assert "\033[" not in text and "\033[33m" in plan_text(plan, colour=True)
    markdown = plan_markdown(plan)
    assert markdown.startswith("### evalhub plan")
    assert "| ~ | `assistant-quality` | run |" in markdown
    assert "<details>" in markdown


def test_state_token_changes_with_any_new_run() -> None:
    before = record(resolved(*BASE))
    assert state_of(before).token() == state_of(before).token()
    assert state_of(before).token() != state_of(before, record(resolved(*BASE))).token()
