"""The verdicts behind `evalhub gate`, pure: ages against a Policy's max_age, the aggregate
against the previous passing result, and the report of every Policy. The ledger, the specs
and the verified results are read by evalhub.app.gate and handed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from evalhub.core.findings import Finding, failed, holds, passed, skipped
from evalhub.core.ledger import LedgerEntry

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)
REGRESSION_TOLERANCE = 1e-9  # float noise is not a regression


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
    hint: str | None = None  # what to do about the failures, when one thing explains them

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.policies)
