"""The report behind `evalhub audit`, pure: one row per ledger revision (a commit that changed
`<ledger.dir>/<evaluation>.json`) with its findings, plus the findings about the history that
belong to no single revision. The checks are made by evalhub.app.audit."""

from __future__ import annotations

from dataclasses import dataclass, field

from evalhub.core.findings import Finding, holds


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
