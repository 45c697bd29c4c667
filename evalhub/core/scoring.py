"""From unit results to a verdict: normalise, weigh, apply thresholds and gates. Pure.

- A metric is normalised to [0, 1] by its scale and direction: (v - min) / (max - min) when
  higher is better, (max - v) / (max - min) when lower is better, clipped to [0, 1].
- The aggregate is the weighted mean of the normalised scores of the entries with weight > 0
  (a missing weight means 1; weight 0 reports without moving the aggregate).
- The verdict is pass only if every unit has a result, every benchmark meets its threshold,
  the aggregate meets the collection threshold and `gates.min_score`, and the aggregate has not
  dropped more than `gates.max_regression` below the last passing result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from evalhub.core.records import metric_key
from evalhub.core.resolved import ResolvedEvaluation, ResolvedUnit
from evalhub.core.spec import Scale

Verdict = Literal["pass", "fail"]


def normalise(value: float, scale: Scale, direction: Literal["higher", "lower"]) -> float:
    span = scale.max - scale.min
    raw = (value - scale.min) / span if direction == "higher" else (scale.max - value) / span
    return min(1.0, max(0.0, raw))


def metric_value(metrics: Mapping[str, float], name: str) -> float | None:
    """The value of `name`: exactly, or the one filtered variant a framework reported
    (`name,<filter>`, recorded as `name/<filter>`)."""
    for key in (name, metric_key(name)):
        if key in metrics:
            return metrics[key]
    variants = [k for k in metrics if k.startswith((name + ",", metric_key(name) + "/"))]
    return metrics[variants[0]] if len(variants) == 1 else None


@dataclass(frozen=True)
class BenchmarkScore:
    key: str
    metric: str
    value: float | None
    score: float | None
    weight: float
    threshold: float | None
    passed: bool


@dataclass(frozen=True)
class EvaluationScore:
    benchmarks: tuple[BenchmarkScore, ...]
    aggregate: float | None
    verdict: Verdict
    reasons: tuple[str, ...] = field(default_factory=tuple)  # why it failed

    def scores(self) -> dict[str, float | None]:
        return {b.key: b.score for b in self.benchmarks}


def score_unit(unit: ResolvedUnit, metrics: Mapping[str, float] | None) -> BenchmarkScore:
    value = None if metrics is None else metric_value(metrics, unit.primary_metric)
    score = None if value is None else normalise(value, unit.scale, unit.direction)
    passed = score is not None and (unit.threshold is None or score >= unit.threshold)
    return BenchmarkScore(
        unit.key, unit.primary_metric, value, score, unit.weight, unit.threshold, passed
    )


def score_evaluation(
    evaluation: ResolvedEvaluation,
    results: Mapping[str, Mapping[str, float] | None],
    baseline: float | None = None,
) -> EvaluationScore:
    """`results`: entry key -> metrics of its successful run (None: no result).
    `baseline`: the aggregate of the last passing result, for the regression gate."""
    benchmarks = tuple(score_unit(u, results.get(u.key)) for u in evaluation.units)
    reasons: list[str] = []
    for b in benchmarks:
        if b.value is None:
            reasons.append(f"{b.key}: no result for metric {b.metric!r}")
        elif not b.passed:
            reasons.append(f"{b.key}: score {b.score:.3f} is below its threshold {b.threshold}")
    weighted = [(b.score, b.weight) for b in benchmarks if b.weight > 0 and b.score is not None]
    total = sum(w for _, w in weighted)
    complete = all(b.score is not None for b in benchmarks if b.weight > 0)
    aggregate = sum(s * w for s, w in weighted) / total if weighted and complete and total else None
    if aggregate is None and not reasons:
        reasons.append("no weighted benchmark has a result")
    if aggregate is not None:
        for label, minimum in (
            ("the collection threshold", evaluation.collection_threshold),
            ("gates.min_score", evaluation.gates.min_score),
        ):
            if minimum is not None and aggregate < minimum:
                reasons.append(f"aggregate {aggregate:.3f} is below {label} {minimum}")
        allowed = evaluation.gates.max_regression
        if allowed is not None and baseline is not None and baseline - aggregate > allowed + 1e-12:
            reasons.append(
                f"aggregate {aggregate:.3f} regressed {baseline - aggregate:.3f} from the last "
                f"passing {baseline:.3f} (allowed {allowed})"
            )
    return EvaluationScore(benchmarks, aggregate, "fail" if reasons else "pass", tuple(reasons))
