"""What an apply reports when it ends: one row per evaluation it touched and one per unit it
ran, as text, JSON (`format_version` 1), markdown (a GitHub job summary) and JUnit XML (for CI
test reporters: a test suite per evaluation, a test case per unit and one for the verdict)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from evalhub.core.render_table import md
from evalhub.core.report import FORMAT_VERSION


@dataclass(frozen=True)
class SummaryRow:
    evaluation: str
    action: str
    units_run: int
    units_failed: int
    aggregate: float | None
    verdict: str
    reasons: tuple[str, ...]
    run_id: str | None = None  # the evaluation's MLflow run
    published: str | None = None  # reference@digest of the signed result
    publish_error: str | None = None
    ledger: str | None = None  # the ledger file written


@dataclass(frozen=True)
class UnitRow:
    evaluation: str
    key: str
    fingerprint: str
    status: str
    error: str | None
    score: float | None


@dataclass(frozen=True)
class ApplyOutcome:
    """Everything an apply's report says, as plain data."""

    evaluations: list[SummaryRow]
    units: list[UnitRow]
    notes: list[str]  # what the user should know (nothing published: no signing key, …)
    ledger_commit: str | None = None
    ok: bool = True  # every unit ran and every result that should be published was


def apply_json(outcome: ApplyOutcome) -> str:
    return json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "ok": outcome.ok,
            "evaluations": [{**asdict(r), "reasons": list(r.reasons)} for r in outcome.evaluations],
            "units": [asdict(u) for u in outcome.units],
            "ledger_commit": outcome.ledger_commit,
            "notes": outcome.notes,
        },
        indent=2,
    )


def apply_markdown(outcome: ApplyOutcome) -> str:
    lines = ["### evalhub apply", ""]
    if not outcome.evaluations:
        lines.append("No changes: nothing was run.")
    else:
        lines += [
            "| Evaluation | Action | Units | Failed | Aggregate | Verdict |",
            "|---|---|---|---|---|---|",
        ]
        for r in outcome.evaluations:
            aggregate = "—" if r.aggregate is None else f"{r.aggregate:.3f}"
            lines.append(
                f"| `{r.evaluation}` | {r.action} | {r.units_run} | {r.units_failed} "
                f"| {aggregate} | {r.verdict} |"
            )
    failed = [u for u in outcome.units if u.status != "succeeded"]
    if failed:
        lines += ["", "**Failed units** (the next apply retries only these):", ""]
        lines += [f"- `{u.evaluation}/{u.key}`: {md(u.error or 'failed')}" for u in failed]
    if outcome.notes:
        lines += ["", *(f"> {md(n)}" for n in outcome.notes)]
    return "\n".join(lines) + "\n"


def _xml(text: str) -> str:
    """Text as an XML attribute value or element content (XML 1.0 forbids most control
    characters even escaped: they are dropped)."""
    kept = "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)
    return (
        kept.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
    )


def _case(name: str, classname: str, failure: str | None = None, out: str | None = None) -> str:
    head = f'    <testcase classname="{_xml(classname)}" name="{_xml(name)}"'
    if failure is not None:
        failed = f'<failure message="{_xml(failure)}">{_xml(failure)}</failure>'
        return f"{head}>\n      {failed}\n    </testcase>"
    if out is not None:
        return f"{head}>\n      <system-out>{_xml(out)}</system-out>\n    </testcase>"
    return f"{head} />"


def apply_junit(outcome: ApplyOutcome) -> str:
    """JUnit XML: a test suite per evaluation, a test case per unit run, one for the verdict."""
    suites: list[str] = []
    total = failures = 0
    for row in outcome.evaluations:
        cases: list[str] = []
        failed = 0
        for unit in (u for u in outcome.units if u.evaluation == row.evaluation):
            if unit.status != "succeeded":
                failed += 1
                cases.append(_case(unit.key, row.evaluation, failure=unit.error or "failed"))
            else:
                out = None if unit.score is None else f"score {unit.score:.4f}"
                cases.append(_case(unit.key, row.evaluation, out=out))
        verdict_failed = row.verdict not in ("pass", "—")
        failed += verdict_failed
        reasons = "; ".join(row.reasons) or f"verdict {row.verdict}"
        cases.append(_case("verdict", row.evaluation, failure=reasons if verdict_failed else None))
        suites.append(
            f'  <testsuite name="{_xml(row.evaluation)}" tests="{len(cases)}" '
            f'failures="{failed}">\n' + "\n".join(cases) + "\n  </testsuite>"
        )
        total += len(cases)
        failures += failed
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="evalhub apply" tests="{total}" failures="{failures}">\n'
        + "".join(s + "\n" for s in suites)
        + "</testsuites>\n"
    )


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
