"""What the reports of audit, gate, history and show share: plain-text tables, check marks,
markdown escaping, times and scores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from evalhub.core.findings import Finding
from evalhub.core.ledger import LedgerEntry

MARK = {True: "ok", False: "FAIL", None: "-"}
MD_MARK = {True: "✅", False: "❌", None: "—"}


def cells(findings: Sequence[Finding], checks: Sequence[str], marks: dict[Any, str]) -> list[str]:
    """One mark per check: a check fails when any of its findings failed."""
    by_check: dict[str, bool | None] = {}
    for finding in findings:
        seen = by_check.get(finding.check, True)
        by_check[finding.check] = False if finding.ok is False or seen is False else finding.ok
    return [marks[by_check[c]] if c in by_check else marks[None] for c in checks]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def revision_of(entry: LedgerEntry) -> str:
    """The model revision the entry was recorded for: its image digest (short) for a Model
    with an image, else its `revision`."""
    image = entry.model_identity.get("image")
    if isinstance(image, str):
        return image[:19]  # sha256: and 12 hex
    return str(entry.model_identity.get("revision", "?"))
