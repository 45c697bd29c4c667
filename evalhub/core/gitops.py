"""The checks behind `evalhub audit` and `evalhub gate`, pure: what the ledger says against what
was attested, thresholds before and after, regressions and ages. The git history, the specs at
a commit and the OCI store are read by the app layer and handed in.

Every check yields a Finding: ok True (holds), False (fails, with the reason) or None (does not
apply here, with why). A row holds when none of its findings failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from evalhub.core.ledger import LedgerEntry
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.result import BenchmarkResult, ResultGates, ResultRecord

GITOPS_REPORT_VERSION = 1
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)
REGRESSION_TOLERANCE = 1e-9  # float noise is not a regression


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


def passed(check: str, detail: str) -> Finding:
    return Finding(check, True, detail)


def failed(check: str, detail: str) -> Finding:
    return Finding(check, False, detail)


def skipped(check: str, detail: str) -> Finding:
    return Finding(check, None, detail)


def holds(findings: Iterable[Finding]) -> bool:
    return all(f.ok is not False for f in findings)


# -- durations and ages ------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` (the spec's Duration) as a timedelta."""
    return int(text[:-1]) * _UNITS[text[-1]]


def age_of(entry: LedgerEntry, now: datetime) -> timedelta:
    recorded = datetime.fromisoformat(entry.time)
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=now.tzinfo)
    return now - recorded


def describe_age(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


# -- the ledger against the attestation --------------------------------------------------------


def record_differences(entry: LedgerEntry, record: ResultRecord) -> list[str]:
    """How the ledger entry differs from the attested result (empty: they agree). Every field
    both carry is compared: identity, scores, gates, verdict, runs, version and time."""
    ledger = entry.model_dump(mode="json")
    attested = record.model_dump(mode="json")
    attested["time"] = attested.pop("created")
    differences: list[str] = []
    for key in sorted(set(ledger) & set(attested)):
        if key == "benchmarks":
            differences += _benchmark_differences(entry.benchmarks, record.benchmarks)
        elif not _same(ledger[key], attested[key]):
            differences.append(
                f"{key}: the ledger says {_short(ledger[key])}, "
                f"the attestation {_short(attested[key])}"
            )
    return differences


def _benchmark_differences(
    ledger: Sequence[BenchmarkResult], attested: Sequence[BenchmarkResult]
) -> list[str]:
    mine = {b.key: b.model_dump(mode="json") for b in ledger}
    theirs = {b.key: b.model_dump(mode="json") for b in attested}
    out = []
    for key in sorted(set(mine) | set(theirs)):
        if key not in theirs:
            out.append(f"benchmark {key}: in the ledger, not in the attestation")
            continue
        if key not in mine:
            out.append(f"benchmark {key}: attested, missing from the ledger")
            continue
        for name in sorted(set(mine[key]) | set(theirs[key])):
            if not _same(mine[key].get(name), theirs[key].get(name)):
                out.append(
                    f"{key}.{name}: the ledger says {_short(mine[key].get(name))}, "
                    f"the attestation {_short(theirs[key].get(name))}"
                )
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-12)
    return bool(a == b)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) else f"{value:.6g}"
    return text if len(text) <= 80 else text[:77] + "..."


# -- thresholds --------------------------------------------------------------------------------

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


# -- regressions -------------------------------------------------------------------------------


def regression(current: LedgerEntry, baseline: LedgerEntry | None) -> Finding:
    """The aggregate against the previous passing entry, within the allowed margin."""
    margin = current.gates.max_regression
    if baseline is None:
        return skipped("regression", "no earlier passing result to compare with")
    if margin is None:
        return skipped("regression", "the evaluation sets no max_regression")
    if current.aggregate is None or baseline.aggregate is None:
        return skipped("regression", "no aggregate to compare")
    drop = baseline.aggregate - current.aggregate
    against = f"{current.aggregate:.4f} against {baseline.aggregate:.4f} ({baseline.time[:10]})"
    if drop > margin + REGRESSION_TOLERANCE:
        return failed(
            "regression", f"the aggregate fell by {drop:.4f}, more than {margin:g}: {against}"
        )
    return passed("regression", f"{against}, within {margin:g}")


# -- reports -----------------------------------------------------------------------------------


@dataclass
class AuditRow:
    """One ledger revision: a commit that changed `<ledger.dir>/<evaluation>.json`."""

    commit: str
    time: int
    path: str
    evaluation: str
    verdict: str | None = None
    fingerprint: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return holds(self.findings)


@dataclass
class AuditReport:
    rows: list[AuditRow]
    since: str | None
    head: str | None
    findings: list[tuple[str, Finding]] = field(default_factory=list)  # not tied to a revision

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and holds(f for _, f in self.findings)


@dataclass
class GateRow:
    evaluation: str
    findings: list[Finding] = field(default_factory=list)
    aggregate: float | None = None
    verdict: str | None = None
    result: str | None = None
    commit: str | None = None

    @property
    def ok(self) -> bool:
        return holds(self.findings) and any(f.ok for f in self.findings)


@dataclass
class PolicyGate:
    policy: str
    model: str | None
    rows: list[GateRow]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


@dataclass
class GateReport:
    policies: list[PolicyGate]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.policies)
