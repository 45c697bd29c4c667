"""`evalhub show` as text, JSON and markdown: an evaluation's current ledger entry."""

from __future__ import annotations

import json

from evalhub.core.ledger import LedgerEntry
from evalhub.core.render_table import md, revision_of, score, table


def show_text(entry: LedgerEntry, commit: str | None) -> str:
    gates = entry.gates
    lines = [
        f"{entry.evaluation}: {entry.verdict.upper()}, aggregate {score(entry.aggregate)}",
        f"  model        {entry.model} (revision {revision_of(entry)})",
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
            score(b.score),
            "—" if b.threshold is None else f"{b.threshold:g}",
            f"{b.weight:g}",
            "pass" if b.passed else "FAIL",
        ]
        for b in entry.benchmarks
    ]
    header = ["benchmark", "metric", "value", "score", "threshold", "weight", ""]
    lines += ["", *table(header, rows)]
    if entry.reasons:
        lines += ["", "Reasons:", *(f"  - {r}" for r in entry.reasons)]
    return "\n".join(lines)


def show_json(entry: LedgerEntry, commit: str | None) -> str:
    data = entry.model_dump(mode="json")
    data["ledger_commit"] = commit
    return json.dumps(data, indent=2, sort_keys=True)


def show_markdown(entry: LedgerEntry, commit: str | None) -> str:
    """A pull-request comment or job summary: the verdict, the scores, where the evidence is."""
    publication = entry.publication
    lines = [
        f"### `{entry.evaluation}`: {entry.verdict.upper()}, aggregate {score(entry.aggregate)}",
        "",
        f"Model `{md(entry.model)}` (revision `{md(revision_of(entry))}`), collection "
        f"`{md(entry.collection or '—')}`, specs at `{(entry.spec_commit or '—')[:12]}`"
        + (f", ledger commit `{commit[:12]}`" if commit else "")
        + ".",
        "",
        "| Benchmark | Metric | Value | Score | Threshold | Weight | |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in entry.benchmarks:
        value = "—" if b.value is None else f"{b.value:.4g}"
        threshold = "—" if b.threshold is None else f"{b.threshold:g}"
        lines.append(
            f"| `{md(b.key)}` | {md(b.metric)} | {value} | {score(b.score)} | {threshold} "
            f"| {b.weight:g} | {'pass' if b.passed else '**FAIL**'} |"
        )
    if entry.reasons:
        lines += ["", *(f"- {md(r)}" for r in entry.reasons)]
    lines += [
        "",
        f"Result: `{md(publication.result or 'not published')}`"
        + (f", signed by `{publication.signer_key_id}`" if publication.result else "")
        + f"; MLflow run `{entry.mlflow.run_id or '—'}`.",
    ]
    return "\n".join(lines) + "\n"
