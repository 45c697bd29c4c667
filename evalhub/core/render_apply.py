"""What an apply reports when it ends: one row per evaluation it touched and one per unit it
ran, as text, JSON (`format_version` 1), markdown (a GitHub job summary) and JUnit XML (for CI
test reporters: a test suite per evaluation, a test case per unit and one for the verdict)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from xml.etree import ElementTree

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


def apply_junit(outcome: ApplyOutcome) -> str:
    suites = ElementTree.Element("testsuites", name="evalhub apply")
    total = failures = 0
    for row in outcome.evaluations:
        units = [u for u in outcome.units if u.evaluation == row.evaluation]
        suite = ElementTree.SubElement(suites, "testsuite", name=row.evaluation)
        for unit in units:
            case = ElementTree.SubElement(
                suite, "testcase", classname=row.evaluation, name=unit.key
            )
            if unit.status != "succeeded":
                failure = ElementTree.SubElement(case, "failure", message=unit.error or "failed")
                failure.text = unit.error or "failed"
            elif unit.score is not None:
                ElementTree.SubElement(case, "system-out").text = f"score {unit.score:.4f}"
        verdict = ElementTree.SubElement(
            suite, "testcase", classname=row.evaluation, name="verdict"
        )
        if row.verdict not in ("pass", "—"):
            reasons = "; ".join(row.reasons) or row.verdict
            ElementTree.SubElement(
                verdict, "failure", message=f"verdict {row.verdict}"
            ).text = reasons
        cases = len(units) + 1
        failed = sum(u.status != "succeeded" for u in units) + (row.verdict not in ("pass", "—"))
        suite.set("tests", str(cases))
        suite.set("failures", str(failed))
        total += cases
        failures += failed
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode"
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
