"""The summary an apply prints: one row per evaluation it touched."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SummaryRow:
    evaluation: str
    action: str
    units_run: int
    units_failed: int
    aggregate: float | None
    verdict: str
    reasons: tuple[str, ...]


def summary_rows_text(rows: list[SummaryRow]) -> str:
    header = ("evaluation", "action", "units", "failed", "aggregate", "verdict")
    table = [header] + [
        (
            r.evaluation,
            r.action,
            str(r.units_run),
            str(r.units_failed),
            "—" if r.aggregate is None else f"{r.aggregate:.3f}",
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        for reason in r.reasons:
            lines.append(f"  {r.evaluation}: {reason}")
    return "\n".join(lines)
