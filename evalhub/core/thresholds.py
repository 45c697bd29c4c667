"""The thresholds a result was held to, against those set later: audit flags a threshold
loosened after a result, gate names the scoring changes that made a result stale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.result import BenchmarkResult, ResultGates

MAX_REGRESSION = "max_regression"


def recorded_thresholds(
    benchmarks: Sequence[BenchmarkResult], gates: ResultGates
) -> dict[str, float | None]:
    """What a result was held to, locked before it ran: every benchmark's threshold, the
    minimum aggregate, the collection's threshold and the largest allowed regression."""
    out: dict[str, float | None] = {f"{b.key} threshold": b.threshold for b in benchmarks}
    out["min_score"] = gates.min_score
    out["collection threshold"] = gates.collection_threshold
    out[MAX_REGRESSION] = gates.max_regression
    return out


def spec_thresholds(evaluation: ResolvedEvaluation) -> dict[str, float | None]:
    """The same thresholds as the specs set them now."""
    out: dict[str, float | None] = {f"{u.key} threshold": u.threshold for u in evaluation.units}
    out["min_score"] = evaluation.gates.min_score
    out["collection threshold"] = evaluation.collection_threshold
    out[MAX_REGRESSION] = evaluation.gates.max_regression
    return out


def loosened(before: Mapping[str, float | None], after: Mapping[str, float | None]) -> list[str]:
    """Thresholds lower (a regression margin larger) in `after` than in `before`, or gone."""
    out = []
    for key, old in before.items():
        if old is None:
            continue
        new = after.get(key)
        if key.endswith(" threshold") and key not in after:
            out.append(f"{key.removesuffix(' threshold')} was removed (its threshold was {old:g})")
        elif new is None:
            out.append(f"{key} {old:g} was removed")
        elif (new > old) if key == MAX_REGRESSION else (new < old):
            verb = "raised" if key == MAX_REGRESSION else "lowered"
            out.append(f"{key} {verb} {old:g} → {new:g}")
    return out
