"""`evalhub audit`, `gate`, `history` and `show` as text, markdown (PR comments, job
summaries) and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from evalhub.core.gitops import (
    GITOPS_REPORT_VERSION,
    AuditReport,
    AuditRow,
    Finding,
    GateReport,
    GateRow,
)
from evalhub.core.ledger import LedgerEntry

AUDIT_CHECKS = ("fingerprint", "attestation", "scores", "signature", "thresholds")
GATE_CHECKS = ("recorded", "fresh", "verified", "passing", "regression", "age")
MARK = {True: "ok", False: "FAIL", None: "-"}
MD_MARK = {True: "✅", False: "❌", None: "—"}


def _cells(findings: Sequence[Finding], checks: Sequence[str], marks: dict[Any, str]) -> list[str]:
    by_check: dict[str, bool | None] = {}
    for finding in findings:
        seen = by_check.get(finding.check, True)
        by_check[finding.check] = False if finding.ok is False or seen is False else finding.ok
    return [marks[by_check[c]] if c in by_check else marks[None] for c in checks]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


# -- audit -------------------------------------------------------------------------------------


def _audit_rows(rows: Sequence[AuditRow], marks: dict[Any, str]) -> list[list[str]]:
    return [
        [
            r.commit[:12],
            _when(r.time),
            r.evaluation,
            r.verdict or "?",
            *_cells(r.findings, AUDIT_CHECKS, marks),
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
    return lines


def _audit_summary(report: AuditReport) -> str:
    bad = sum(1 for r in report.rows if not r.ok)
    scope = f" since {report.since}" if report.since else ""
    if not report.rows:
        return f"Audit: no ledger revisions{scope}."
    if bad:
        return f"Audit FAILED: {bad} of {len(report.rows)} ledger revisions{scope} do not hold."
    return f"Audit passed: all {len(report.rows)} ledger revisions{scope} hold."


def audit_text(report: AuditReport) -> str:
    header = ["commit", "committed", "evaluation", "verdict", *AUDIT_CHECKS]
    lines = _table(header, _audit_rows(report.rows, MARK)) if report.rows else []
    failures = _audit_failures(report)
    if failures:
        lines += ["", *failures]
    return "\n".join([*lines, "", _audit_summary(report)]).lstrip("\n")


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
        lines += ["", *(f"- {_md(f)}" for f in failures)]
    return "\n".join(lines) + "\n"


def audit_json(report: AuditReport) -> str:
    return json.dumps(
        {
            "version": GITOPS_REPORT_VERSION,
            "ok": report.ok,
            "since": report.since,
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
        },
        indent=2,
    )


# -- gate --------------------------------------------------------------------------------------


def _gate_rows(rows: Sequence[GateRow], marks: dict[Any, str]) -> list[list[str]]:
    return [
        [r.evaluation, _score(r.aggregate), *_cells(r.findings, GATE_CHECKS, marks)] for r in rows
    ]


def gate_text(report: GateReport) -> str:
    lines: list[str] = []
    for policy in report.policies:
        model = f" (model {policy.model})" if policy.model else ""
        verdict = "PASS" if policy.ok else "FAIL"
        lines += [f"Policy {policy.policy}{model}: {verdict}", ""]
        lines += _table(["evaluation", "aggregate", *GATE_CHECKS], _gate_rows(policy.rows, MARK))
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
            f"- `{r.evaluation}` **{f.check}**: {_md(f.detail)}"
            for r in policy.rows
            for f in r.findings
            if f.ok is False
        ]
        lines += ["", *reasons, ""] if reasons else [""]
    return "\n".join(lines)


def gate_json(report: GateReport) -> str:
    return json.dumps(
        {
            "version": GITOPS_REPORT_VERSION,
            "ok": report.ok,
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


# -- history and show --------------------------------------------------------------------------


def _revision_of(entry: LedgerEntry) -> str:
    return str(entry.model_identity.get("revision", "?"))


def _digest(entry: LedgerEntry) -> str:
    result = entry.publication.result
    return result.rsplit("@", 1)[-1][:19] if result else "unpublished"


def _run_link(entry: LedgerEntry) -> str:
    return f"runs:/{entry.mlflow.run_id}" if entry.mlflow.run_id else "—"


HistoryItem = tuple[str, int, LedgerEntry]  # commit, committer time, entry


def history_text(evaluation: str, items: Sequence[HistoryItem]) -> str:
    if not items:
        return f"No ledger history for {evaluation}."
    header = ["commit", "scored", "model revision", "aggregate", "verdict", "fingerprint", "result"]
    rows = [
        [
            commit[:12],
            entry.time[:16].replace("T", " "),
            _revision_of(entry),
            _score(entry.aggregate),
            entry.verdict,
            entry.fingerprint[:12],
            _digest(entry),
        ]
        for commit, _, entry in items
    ]
    count = f"{len(items)} recorded result{'s' if len(items) != 1 else ''}"
    lines = [f"{evaluation}: {count}", "", *_table(header, rows), ""]
    lines += ["Per model revision:"]
    for revision, group in _by_revision(items).items():
        scores = [e.aggregate for _, _, e in group if e.aggregate is not None]
        last = group[-1][2]
        best = f", best {max(scores):.4f}" if scores else ""
        lines.append(
            f"  {revision}: {len(group)} result{'s' if len(group) != 1 else ''}, latest "
            f"{_score(last.aggregate)} {last.verdict}{best}"
        )
    return "\n".join(lines)


def history_markdown(evaluation: str, items: Sequence[HistoryItem]) -> str:
    lines = [f"### `{evaluation}`: results over time", ""]
    lines += [
        "| Commit | Scored | Model revision | Aggregate | Verdict | Result | MLflow run |",
        "|---|---|---|---|---|---|---|",
    ]
    for commit, _, entry in items:
        lines.append(
            f"| `{commit[:12]}` | {entry.time[:16].replace('T', ' ')} | `{_revision_of(entry)}` "
            f"| {_score(entry.aggregate)} | {entry.verdict} "
            f"| `{_md(entry.publication.result or '—')}` "
            f"| `{_run_link(entry)}` |"
        )
    return "\n".join(lines) + "\n"


def history_json(evaluation: str, items: Sequence[HistoryItem]) -> str:
    return json.dumps(
        {
            "version": GITOPS_REPORT_VERSION,
            "evaluation": evaluation,
            "results": [
                {
                    "commit": commit,
                    "committed": time,
                    "model_revision": _revision_of(entry),
                    "aggregate": entry.aggregate,
                    "verdict": entry.verdict,
                    "fingerprint": entry.fingerprint,
                    "scores": {b.key: b.score for b in entry.benchmarks},
                    "result": entry.publication.result,
                    "mlflow": entry.mlflow.model_dump(mode="json"),
                    "time": entry.time,
                }
                for commit, time, entry in items
            ],
        },
        indent=2,
    )


def _by_revision(items: Sequence[HistoryItem]) -> dict[str, list[HistoryItem]]:
    groups: dict[str, list[HistoryItem]] = {}
    for item in items:
        groups.setdefault(_revision_of(item[2]), []).append(item)
    return groups


def show_text(entry: LedgerEntry, commit: str | None) -> str:
    gates = entry.gates
    lines = [
        f"{entry.evaluation}: {entry.verdict.upper()}, aggregate {_score(entry.aggregate)}",
        f"  model        {entry.model} (revision {_revision_of(entry)})",
        f"  collection   {entry.collection or '—'}",
        f"  fingerprint  {entry.fingerprint} (v{entry.fingerprint_version})",
        f"  specs        {', '.join(entry.spec_files)} at {entry.spec_commit or '—'}",
        f"  scored       {entry.time}" + (f", ledger commit {commit[:12]}" if commit else ""),
        f"  result       {entry.publication.result or 'not published'}",
    ]
    if entry.publication.result:
        lines.append(f"  attestation  {entry.publication.attestation_digest}")
        lines.append(f"  signer       {entry.publication.signer_key_id}")
    lines.append(
        f"  mlflow       {entry.mlflow.tracking_uri or '—'} run {entry.mlflow.run_id or '—'}"
    )
    set_gates = [
        f"{name} {value:g}"
        for name, value in (
            ("min_score", gates.min_score),
            ("collection threshold", gates.collection_threshold),
            ("max_regression", gates.max_regression),
        )
        if value is not None
    ]
    lines.append("  gates        " + (", ".join(set_gates) or "none"))
    rows = [
        [
            b.key,
            b.metric,
            "—" if b.value is None else f"{b.value:.4g}",
            _score(b.score),
            "—" if b.threshold is None else f"{b.threshold:g}",
            f"{b.weight:g}",
            "pass" if b.passed else "FAIL",
        ]
        for b in entry.benchmarks
    ]
    header = ["benchmark", "metric", "value", "score", "threshold", "weight", ""]
    lines += ["", *_table(header, rows)]
    if entry.reasons:
        lines += ["", "Reasons:", *(f"  - {r}" for r in entry.reasons)]
    return "\n".join(lines)


def show_json(entry: LedgerEntry, commit: str | None) -> str:
    data = entry.model_dump(mode="json")
    data["ledger_commit"] = commit
    return json.dumps(data, indent=2, sort_keys=True)
