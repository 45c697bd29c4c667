"""The report behind `evalhub audit`, pure: one row per ledger revision (a commit that changed
`<ledger.dir>/<evaluation>.json`) with its findings, plus the findings about the history that
belong to no single revision. The checks are made by evalhub.app.audit."""

from __future__ import annotations

from dataclasses import dataclass, field

from evalhub.core.findings import NOT_SIGNED, Finding, holds


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


def since_hint(report: AuditReport) -> str | None:
    """When the only failing revisions are unsigned ones older than every signed revision
    (history that predates signing), how to audit from signing on: `--since` the newest of
    them."""
    if report.since is not None:
        return None

    def unsigned(row: AuditRow) -> bool:
        failing = [f for f in row.findings if f.ok is False]
        return bool(failing) and all(f.detail == NOT_SIGNED for f in failing)

    early = [r for r in report.rows if unsigned(r)]
    signed = [r for r in report.rows if not any(f.detail == NOT_SIGNED for f in r.findings)]
    if not early or not signed or any(not r.ok for r in signed):
        return None
    newest = max(early, key=lambda r: r.time)
    if newest.time > min(r.time for r in signed):
        return None  # an unsigned result after signing began: that is a finding, not history
    return (
        f"{len(early)} ledger revision(s) predate signing (results recorded without a key); "
        f"audit from signing on with `evalhub audit --since {newest.commit[:12]}`"
    )
