"""Aggregation and gates: normalisation, weights, thresholds, regression."""

from __future__ import annotations

import pytest

from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.scoring import metric_value, normalise, score_evaluation
from evalhub.core.spec import Scale
from tests.specs import BASE, COLLECTION, EVALUATION, MODEL, PROVIDER, edit, validate


def evaluation(*texts: str) -> ResolvedEvaluation:
    result = validate(*texts)
    assert result.ok, result.diagnostics
    (ev,) = resolve(result.specs, {"data/faq.jsonl": "sha256:" + "a" * 64})
    return ev


def test_normalise_by_scale_and_direction() -> None:
    assert normalise(0.25, Scale(), "higher") == 0.25
    assert normalise(250, Scale(min=0, max=1000), "lower") == 0.75
    assert normalise(5000, Scale(min=0, max=1000), "lower") == 0.0  # clipped
    assert normalise(4, Scale(min=0, max=5), "higher") == pytest.approx(0.8)


def test_metric_lookup_accepts_one_filter_variant() -> None:
    assert metric_value({"exact_match,strip": 0.4}, "exact_match") == 0.4
    assert metric_value({"exact_match/strip": 0.4}, "exact_match") == 0.4  # as recorded
    assert metric_value({"exact_match/strip": 0.4}, "exact_match,strip") == 0.4
    assert metric_value({"acc": 0.5, "acc_norm": 0.6}, "acc") == 0.5
    assert metric_value({"em,a": 1.0, "em,b": 0.0}, "em") is None  # ambiguous: no guess


def test_weighted_mean_and_pass() -> None:
    # faq weight 2 (threshold 0.8 from the gate), tone weight 1; collection 0.6; min_score 0.7
    ev = evaluation(*BASE)
    result = score_evaluation(ev, {"faq": {"contains": 0.9}, "tone": {"f1": 0.6}})
    assert result.aggregate == pytest.approx((0.9 * 2 + 0.6) / 3)
    assert result.verdict == "pass" and result.reasons == ()


def test_each_failing_gate_gives_its_reason() -> None:
    ev = evaluation(*BASE)
    low = score_evaluation(ev, {"faq": {"contains": 0.7}, "tone": {"f1": 0.1}})
    assert low.verdict == "fail"
    assert low.reasons == (
        "faq: score 0.700 is below its threshold 0.8",
        "aggregate 0.500 is below the collection threshold 0.6",
        "aggregate 0.500 is below gates.min_score 0.7",
    )
    missing = score_evaluation(ev, {"faq": {"contains": 0.9}, "tone": None})
    assert missing.verdict == "fail" and missing.aggregate is None
    assert missing.reasons == ("tone: no result for metric 'f1'",)


def test_regression_against_the_last_passing_result() -> None:
    gated = edit(EVALUATION, spec__gates={"max_regression": 0.05})
    ev = evaluation(MODEL, PROVIDER, COLLECTION, gated)
    results = {"faq": {"contains": 0.9}, "tone": {"f1": 0.9}}
    assert score_evaluation(ev, results, baseline=0.93).verdict == "pass"
    dropped = score_evaluation(ev, results, baseline=0.99)
    assert dropped.verdict == "fail"
    assert "regressed 0.090 from the last passing 0.990" in dropped.reasons[0]


def test_weight_zero_reports_without_moving_the_aggregate() -> None:
    zero = COLLECTION.replace(
        "- {provider: builtin, benchmark: tone}",
        "- {provider: builtin, benchmark: tone, weight: 0}",
    )
    ev = evaluation(MODEL, PROVIDER, zero, EVALUATION)
    result = score_evaluation(ev, {"faq": {"contains": 0.9}, "tone": {"f1": 0.0}})
    assert result.aggregate == pytest.approx(0.9)
    assert result.benchmarks[1].score == 0.0
