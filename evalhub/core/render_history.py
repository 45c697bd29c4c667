"""`evalhub history` as text, markdown and JSON: an evaluation's results over time."""

from __future__ import annotations

import json
from collections.abc import Sequence

from evalhub.core.findings import GITOPS_REPORT_VERSION
from evalhub.core.ledger import LedgerEntry
from evalhub.core.render_table import md, revision_of, score, table


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
            revision_of(entry),
            score(entry.aggregate),
            entry.verdict,
            entry.fingerprint[:12],
            _digest(entry),
        ]
        for commit, _, entry in items
    ]
    count = f"{len(items)} recorded result{'s' if len(items) != 1 else ''}"
    lines = [f"{evaluation}: {count}", "", *table(header, rows), ""]
    lines += ["Per model revision:"]
    for revision, group in _by_revision(items).items():
        scores = [e.aggregate for _, _, e in group if e.aggregate is not None]
        last = group[-1][2]
        best = f", best {max(scores):.4f}" if scores else ""
        lines.append(
            f"  {revision}: {len(group)} result{'s' if len(group) != 1 else ''}, latest "
            f"{score(last.aggregate)} {last.verdict}{best}"
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
            f"| `{commit[:12]}` | {entry.time[:16].replace('T', ' ')} | `{revision_of(entry)}` "
            f"| {score(entry.aggregate)} | {entry.verdict} "
            f"| `{md(entry.publication.result or '—')}` "
            f"| `{_run_link(entry)}` |"
        )
    return "\n".join(lines) + "\n"


def history_json(evaluation: str, items: Sequence[HistoryItem]) -> str:
    return json.dumps(
        {
            "format_version": GITOPS_REPORT_VERSION,
            "evaluation": evaluation,
            "results": [
                {
                    "commit": commit,
                    "committed": time,
                    "model_revision": revision_of(entry),
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
        groups.setdefault(revision_of(item[2]), []).append(item)
    return groups
