"""`evalhub gate` as text, markdown (PR comments, job summaries) and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from evalhub.core.findings import GITOPS_REPORT_VERSION
from evalhub.core.gate import GateReport, GateRow
from evalhub.core.render_table import MARK, MD_MARK, cells, md, score, table

GATE_CHECKS = ("recorded", "fresh", "verified", "passing", "regression", "age")


def _gate_rows(rows: Sequence[GateRow], marks: dict[Any, str]) -> list[list[str]]:
    return [
        [r.evaluation, score(r.aggregate), *cells(r.findings, GATE_CHECKS, marks)] for r in rows
    ]


def gate_text(report: GateReport) -> str:
    lines: list[str] = []
    for policy in report.policies:
        model = f" (model {policy.model})" if policy.model else ""
        verdict = "PASS" if policy.ok else "FAIL"
        lines += [f"Policy {policy.policy}{model}: {verdict}", ""]
        lines += table(["evaluation", "aggregate", *GATE_CHECKS], _gate_rows(policy.rows, MARK))
        reasons = [
            f"  {r.evaluation}: {f.check}: {f.detail}"
            for r in policy.rows
            for f in r.findings
            if f.ok is False
        ]
        lines += ["", *reasons, ""] if reasons else [""]
    passed = sum(1 for p in report.policies if p.ok)
    lines.append(
        f"Gate {'passed' if report.ok else 'FAILED'}: {passed} of {len(report.policies)} "
        f"polic{'y' if len(report.policies) == 1 else 'ies'} satisfied."
    )
    if report.hint:
        lines.append(f"  hint: {report.hint}")
    return "\n".join(lines)


def gate_markdown(report: GateReport) -> str:
    lines = [f"### evalhub gate: {'✅ pass' if report.ok else '❌ fail'}", ""]
    for policy in report.policies:
        model = f" — model `{policy.model}`" if policy.model else ""
        lines += [
            f"#### {MD_MARK[policy.ok]} `{policy.policy}`{model}",
            "",
            "| Evaluation | Aggregate | " + " | ".join(GATE_CHECKS) + " |",
            "|" + "---|" * (2 + len(GATE_CHECKS)),
        ]
        for row in _gate_rows(policy.rows, MD_MARK):
            row[0] = f"`{row[0]}`"
            lines.append("| " + " | ".join(row) + " |")
        reasons = [
            f"- `{r.evaluation}` **{f.check}**: {md(f.detail)}"
            for r in policy.rows
            for f in r.findings
            if f.ok is False
        ]
        lines += ["", *reasons, ""] if reasons else [""]
    if report.hint:
        lines += [f"> {md(report.hint)}", ""]
    return "\n".join(lines)


def gate_json(report: GateReport) -> str:
    return json.dumps(
        {
            "format_version": GITOPS_REPORT_VERSION,
            "ok": report.ok,
            "hint": report.hint,
            "policies": [
                {
                    "policy": p.policy,
                    "model": p.model,
                    "ok": p.ok,
                    "evaluations": [
                        {
                            "evaluation": r.evaluation,
                            "ok": r.ok,
                            "aggregate": r.aggregate,
                            "verdict": r.verdict,
                            "result": r.result,
                            "checks": [f.as_dict() for f in r.findings],
                        }
                        for r in p.rows
                    ],
                }
                for p in report.policies
            ],
        },
        indent=2,
    )
