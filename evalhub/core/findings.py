"""What `evalhub audit` and `evalhub gate` report, check by check.

Every check yields a Finding: ok True (holds), False (fails, with the reason) or None (does not
apply here, with why). A row holds when none of its findings failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GITOPS_REPORT_VERSION = 1  # the JSON reports of audit, gate and history

# The detail of a result recorded without a signature (apply had no signing key): gate and
# audit both say it, and the hints below recognise it.
NOT_SIGNED = "the result was not signed and published"
NO_KEY_HINT = (
    "no signing key is set up, so apply records results without signing or publishing them: "
    "run `evalhub keys generate`, then `evalhub apply` (it signs and publishes the recorded "
    "results without re-running them)"
)


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


def passed(check: str, detail: str) -> Finding:
    return Finding(check, True, detail)


def failed(check: str, detail: str) -> Finding:
    return Finding(check, False, detail)


def skipped(check: str, detail: str) -> Finding:
    return Finding(check, None, detail)


def holds(findings: Iterable[Finding]) -> bool:
    return all(f.ok is not False for f in findings)
