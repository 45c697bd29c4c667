"""The ledger against the attestation: how a ledger entry differs from the signed result it
names. Gate and audit both refuse a ledger that says something the signature does not."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evalhub.core.ledger import LedgerEntry
from evalhub.core.result import BenchmarkResult, ResultRecord


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
