"""`evalhub audit` as text, markdown (PR comments, job summaries) and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from evalhub.core.audit import AuditReport, AuditRow, since_hint
from evalhub.core.findings import GITOPS_REPORT_VERSION
from evalhub.core.render_table import MARK, MD_MARK, cells, md, table, when

AUDIT_CHECKS = ("fingerprint", "attestation", "scores", "signature", "thresholds")


def _audit_rows(rows: Sequence[AuditRow], marks: dict[Any, str]) -> list[list[str]]:
    return [
        [
            r.commit[:12],
            when(r.time),
            r.evaluation,
            r.verdict or "?",
            *cells(r.findings, AUDIT_CHECKS, marks),
        ]
        for r in rows
    ]


def _audit_failures(report: AuditReport) -> list[str]:
    lines = []
    for row in report.rows:
        for finding in row.findings:
            if finding.ok is False:
                where = f"{row.commit[:12]} {row.evaluation}"
                lines.append(f"{where}: {finding.check}: {finding.detail}")
    lines += [f"{f.check}: {f.detail}" for _, f in report.findings if f.ok is False]
    return lines


def _accepted_changes(report: AuditReport) -> list[str]:
    return [f"{f.check}: {f.detail}" for _, f in report.findings if f.ok]


def _audit_summary(report: AuditReport) -> str:
    bad = sum(1 for r in report.rows if not r.ok)
    scope = f" since {report.since}" if report.since else ""
    if not report.rows:
        rows = f"no ledger revisions{scope}"
    elif bad:
        rows = f"{bad} of {len(report.rows)} ledger revisions{scope} do not hold"
    else:
        rows = f"all {len(report.rows)} ledger revisions{scope} hold"
    unsigned = sum(1 for _, f in report.findings if f.ok is False)
    if unsigned:
        changes = (
            f"{unsigned} change{'s' if unsigned != 1 else ''} to the trust settings or Policies"
        )
        return f"Audit FAILED: {rows}; {changes} not signed by the previous trust root."
    if bad:
        return f"Audit FAILED: {rows}."
    return f"Audit passed: {rows}." if report.rows else f"Audit: {rows}."


def audit_text(report: AuditReport) -> str:
    header = ["commit", "committed", "evaluation", "verdict", *AUDIT_CHECKS]
    lines = table(header, _audit_rows(report.rows, MARK)) if report.rows else []
    failures = _audit_failures(report)
    if failures:
        lines += ["", *failures]
    accepted = _accepted_changes(report)
    if accepted:
        lines += ["", "Accepted changes to the trust settings:", *(f"  {a}" for a in accepted)]
    hint = since_hint(report)
    lines += ["", _audit_summary(report)] + ([f"  hint: {hint}"] if hint else [])
    return "\n".join(lines).lstrip("\n")


def audit_markdown(report: AuditReport) -> str:
    lines = ["### evalhub audit", "", f"**{_audit_summary(report)}**", ""]
    if report.rows:
        header = ["Commit", "Committed", "Evaluation", "Verdict", *AUDIT_CHECKS]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in _audit_rows(report.rows, MD_MARK):
            row[0], row[2] = f"`{row[0]}`", f"`{row[2]}`"
            lines.append("| " + " | ".join(row) + " |")
    failures = _audit_failures(report)
    if failures:
        lines += ["", *(f"- {md(f)}" for f in failures)]
    accepted = _accepted_changes(report)
    if accepted:
        lines += ["", "Accepted changes to the trust settings:", *(f"- {md(a)}" for a in accepted)]
    hint = since_hint(report)
    if hint:
        lines += ["", f"> {md(hint)}"]
    return "\n".join(lines) + "\n"


def audit_json(report: AuditReport) -> str:
    return json.dumps(
        {
            "format_version": GITOPS_REPORT_VERSION,
            "ok": report.ok,
            "since": report.since,
            "hint": since_hint(report),
            "head": report.head,
            "revisions": [
                {
                    "commit": r.commit,
                    "time": r.time,
                    "path": r.path,
                    "evaluation": r.evaluation,
                    "verdict": r.verdict,
                    "fingerprint": r.fingerprint,
                    "ok": r.ok,
                    "checks": [f.as_dict() for f in r.findings],
                }
                for r in report.rows
            ],
            "trust": [{"commit": commit, **f.as_dict()} for commit, f in report.findings],
        },
        indent=2,
    )
