"""`evalhub report` as one self-contained HTML page and as markdown (PR comments, the GitHub
job summary). Pure: everything shown is in the Report handed in.

The HTML has no script, no external stylesheet, font or image and no link the browser
follows on its own: it opens from file:// offline, in a CI artifact. Its chart is inline SVG
(evalhub.core.report_chart) and every number in it is also in a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from evalhub.core.findings import Finding
from evalhub.core.gate import PolicyGate
from evalhub.core.ledger import LedgerEntry
from evalhub.core.markup import escape
from evalhub.core.render_gate import GATE_CHECKS
from evalhub.core.render_table import MD_MARK, cells, md, score, when
from evalhub.core.report_chart import chart
from evalhub.core.report_data import (
    Envelope,
    EvaluationReport,
    Report,
    TrendPoint,
    Trust,
    UnitEnvelope,
)

CSS = """
:root { --ink:#1b1f24; --muted:#57606a; --line:#d0d7de; --pass:#0b5cad; --fail:#b35900; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--ink); max-width: 1000px;
  margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid var(--line); padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid var(--line); padding: .25em .6em; text-align: left;
  vertical-align: top; }
code, .mono { font-family: ui-monospace, monospace; font-size: .9em; overflow-wrap: anywhere; }
.verdict { font-weight: bold; padding: .1em .5em; border: 2px solid; border-radius: 4px; }
.verdict.pass { color: var(--pass); } .verdict.fail { color: var(--fail); }
.ok { color: var(--pass); } .bad { color: var(--fail); font-weight: bold; }
.muted { color: var(--muted); }
svg.chart { max-width: 100%; height: auto; font: 12px system-ui, sans-serif; }
svg .panel { font-weight: bold; } svg .axis { stroke: var(--muted); }
svg .pass-fill { fill: var(--pass); } svg .fail-fill { fill: #fff; }
svg .fail-bar { fill: var(--fail); stroke: var(--fail); }
svg .hatch { stroke: var(--fail); stroke-width: 3; }
svg .threshold { stroke: var(--ink); stroke-width: 2; stroke-dasharray: 3 2; }
svg .trend-line { fill: none; stroke: var(--muted); stroke-width: 1.5; }
svg .regression { fill: var(--fail); } svg .flag { fill: var(--fail); font-weight: bold; }
svg .tick { fill: var(--muted); font-size: 11px; }
details { margin: .5em 0; }
"""

_CHECK_WORD = {True: "✔ yes", False: "✘ no", None: "— n/a"}


def _slug(name: str) -> str:
    return "e-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _h(text: object) -> str:
    return escape(str(text))


def _verdict(verdict: str | None) -> str:
    if verdict is None:
        return '<span class="verdict fail">✘ NOT RECORDED</span>'
    mark = "✔ PASS" if verdict == "pass" else "✘ FAIL"
    return f'<span class="verdict {verdict}">{mark}</span>'


def _yes(flag: bool | None) -> str:
    css = {True: "ok", False: "bad", None: "muted"}[flag]
    return f'<span class="{css}">{_CHECK_WORD[flag]}</span>'


# -- HTML -----------------------------------------------------------------------------------


def report_html(report: Report) -> str:
    body = [f"<h1>{_h(report.title)}</h1>"]
    if report.revision:
        body.append(f'<p class="muted">Specs at commit <code>{_h(report.revision)}</code>.</p>')
    body.append(_summary_html(report))
    if report.gate is not None:
        body += [_policy_html(p) for p in report.gate.policies]
    body += [_evaluation_html(e) for e in report.evaluations]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # No request may leave the page: scripts, styles, images, fonts, frames all off.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(report.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _summary_html(report: Report) -> str:
    rows = []
    for e in report.evaluations:
        entry = e.entry
        trust = e.trust
        rows.append(
            f'<tr><td><a href="#{_slug(e.name)}">{_h(e.name)}</a></td>'
            f"<td>{_verdict(entry.verdict if entry else None)}</td>"
            f"<td>{score(entry.aggregate) if entry else '—'}</td>"
            f"<td>{_h(entry.model) if entry else '—'}</td>"
            f"<td>{_yes(trust.verified if trust else False)}</td></tr>"
        )
    return (
        "<h2>Evaluations</h2><table><thead><tr><th>Evaluation</th><th>Verdict</th>"
        "<th>Aggregate</th><th>Model</th><th>Verified</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _policy_html(policy: PolicyGate) -> str:
    model = f" — model <code>{_h(policy.model)}</code>" if policy.model else ""
    head = "".join(f"<th>{c}</th>" for c in GATE_CHECKS)
    rows = []
    for row in policy.rows:
        marks = cells(row.findings, GATE_CHECKS, {True: "y", False: "n", None: "-"})
        states = [{"y": True, "n": False}.get(m) for m in marks]
        rows.append(
            f"<tr><td>{_h(row.evaluation)}</td>"
            + "".join(f"<td>{_yes(s)}</td>" for s in states)
            + "</tr>"
        )
    reasons = _findings_list(f for r in policy.rows for f in r.findings if f.ok is False)
    answer = "✔ yes" if policy.ok else "✘ no"
    css = "ok" if policy.ok else "bad"
    return (
        f'<section class="policy"><h2>Policy {_h(policy.policy)}{model}</h2>'
        f'<p>May this model be promoted? <strong class="{css}">{answer}</strong> '
        "(the answer of <code>evalhub gate</code>)</p>"
        f"<table><thead><tr><th>Requirement</th>{head}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + reasons
        + "</section>"
    )


def _findings_list(findings: Iterable[Finding]) -> str:
    items = [f"<li><strong>{_h(f.check)}</strong>: {_h(f.detail)}</li>" for f in findings]
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _evaluation_html(e: EvaluationReport) -> str:
    slug = _slug(e.name)
    out = [f'<section class="evaluation" id="{slug}">']
    entry = e.entry
    out.append(f"<h2>{_h(e.name)} {_verdict(entry.verdict if entry else None)}</h2>")
    if entry is None:
        out.append(f'<p class="bad">{_h(e.problem or "no ledger entry")}</p></section>')
        return "\n".join(out)
    out.append(_why_html(entry))
    out.append(_scores_html(entry, e.envelope))
    out.append(f"<figure>{chart(slug, e.name, entry.benchmarks, e.trend)}</figure>")
    out.append(_trend_html(e))
    if e.trust is not None:
        out.append(_trust_html(e.trust, e))
    out.append(_failed_html(e))
    if e.envelope is not None:
        out.append(_envelope_html(e.envelope))
    out.append("</section>")
    return "\n".join(out)


def _why_html(entry: LedgerEntry) -> str:
    gates = entry.gates
    limits = [
        (label, value)
        for label, value in (
            ("min_score", gates.min_score),
            ("collection threshold", gates.collection_threshold),
            ("max_regression", gates.max_regression),
        )
        if value is not None
    ]
    against = ", ".join(f"{label} {value:g}" for label, value in limits) or "no aggregate gate"
    why = (
        "<ul>" + "".join(f"<li>{_h(r)}</li>" for r in entry.reasons) + "</ul>"
        if entry.reasons
        else "<p>Every threshold is met.</p>"
    )
    return (
        f"<p>Model <code>{_h(entry.model)}</code>, revision "
        f"<code>{_h(entry.model_identity.get('revision', '?'))}</code>; collection "
        f"<code>{_h(entry.collection or '—')}</code>; scored {_h(entry.time)}.</p>"
        f"<p>Aggregate <strong>{score(entry.aggregate)}</strong> against {_h(against)}.</p>"
        f"<p>Why {entry.verdict}:</p>{why}"
    )


def _framework(unit: UnitEnvelope | None) -> str:
    if unit is None or unit.adapter is None:
        return "unknown (result not verified)"
    version = unit.framework_version or "version not pinned"
    return f"{unit.adapter} {version}"


def _units(envelope: Envelope | None) -> dict[str, UnitEnvelope]:
    return {u.key: u for u in envelope.units} if envelope else {}


def _scores_html(entry: LedgerEntry, envelope: Envelope | None) -> str:
    units = _units(envelope)
    rows = "".join(
        f"<tr><td>{_h(b.key)}</td><td>{_h(b.metric)}</td>"
        f"<td>{'—' if b.value is None else f'{b.value:.4g}'}</td><td>{score(b.score)}</td>"
        f"<td>{'—' if b.threshold is None else f'{b.threshold:g}'}</td><td>{b.weight:g}</td>"
        f"<td>{_yes(b.passed)}</td><td>{_h(_framework(units.get(b.key)))}</td></tr>"
        for b in entry.benchmarks
    )
    return (
        '<table class="scores"><caption>Per-benchmark scores against thresholds</caption>'
        "<thead><tr><th>Benchmark</th><th>Metric</th><th>Value</th><th>Score</th>"
        "<th>Threshold</th><th>Weight</th><th>Passed</th><th>Framework</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _trend_html(e: EvaluationReport) -> str:
    if not e.trend:
        return '<p class="muted">No ledger history in git for this evaluation yet.</p>'
    rows = "".join(
        f"<tr><td><code>{p.commit[:12]}</code></td><td>{when(p.committed)}</td>"
        f"<td><code>{_h(p.model_revision)}</code></td>"
        f"<td><code>{_h((p.entry.spec_commit or '—')[:12])}</code></td>"
        f"<td>{score(p.entry.aggregate)}</td><td>{_h(p.entry.verdict)}</td>"
        f"<td>{'<span class=bad>▼ ' + _h(p.regression) + '</span>' if p.regression else '—'}</td>"
        "</tr>"
        for p in e.trend
    )
    return (
        "<details><summary>Ledger history (the trend chart's numbers)</summary>"
        '<table class="trend"><thead><tr><th>Ledger commit</th><th>Committed</th>'
        "<th>Model revision</th><th>Spec commit</th><th>Aggregate</th><th>Verdict</th>"
        f"<th>Regression</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _trust_html(trust: Trust, e: EvaluationReport) -> str:
    rows = [
        ("Signed", _yes(trust.signed)),
        ("Verified", _yes(trust.verified) + f" — {_h(trust.detail)}"),
        ("Signer key", f"<code>{_h(trust.key_name or '—')} {_h(trust.key_id or '')}</code>"),
        ("OCI result", f"<code>{_h(trust.reference or 'not published')}</code>"),
        ("Attestation", f"<code>{_h(trust.attestation or '—')}</code>"),
        ("Ledger commit", f"<code>{_h(e.ledger_commit or 'not committed')}</code>"),
    ]
    for link in e.runs:
        target = (
            f'<a href="{_h(link.target)}" rel="noreferrer">{_h(link.target)}</a>'
            if link.url
            else f"<code>{_h(link.target)}</code>"
        )
        rows.append((f"MLflow run ({_h(link.label)})", target))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    checks = "".join(f"<li>{_h(n)}: {_h(d)}</li>" for n, d in trust.checks)
    detail = f"<details><summary>Checks that held</summary><ul>{checks}</ul></details>"
    return f'<h3>Trust</h3><table class="trust">{body}</table>' + (detail if checks else "")


def _failed_html(e: EvaluationReport) -> str:
    if not e.failed:
        return "<h3>Failed units</h3><p>None.</p>"
    items = "".join(f"<li><code>{_h(f.key)}</code>: {_h(f.reason)}</li>" for f in e.failed)
    return f'<h3>Failed units</h3><ul class="failed">{items}</ul>'


def _envelope_html(envelope: Envelope) -> str:
    source = (
        "read from the layers of the verified result"
        if envelope.verified
        else "from the ledger only: the result is not verified, so nothing else is shown"
    )
    rows = [
        ("Evaluation fingerprint", f"{envelope.fingerprint} (v{envelope.fingerprint_version})"),
        ("Spec commit", envelope.spec_commit or "—"),
    ]
    rows += [(str(k), _plain(v)) for k, v in sorted(envelope.environment.items())]
    body = "".join(f"<tr><th>{_h(k)}</th><td><code>{_h(v)}</code></td></tr>" for k, v in rows)
    units = "".join(
        f"<tr><td>{_h(u.key)}</td><td><code>{_h(u.fingerprint)}</code></td>"
        f"<td>{_h(_framework(u))}</td><td><code>{_h(u.image or '—')}</code></td>"
        f"<td>{'<br>'.join(f'<code>{_h(p)} {_h(d)}</code>' for p, d in u.datasets.items()) or '—'}"
        "</td></tr>"
        for u in envelope.units
    )
    return (
        f'<h3>Reproducibility envelope</h3><p class="muted">{_h(source)}.</p>'
        f'<table class="envelope">{body}</table>'
        "<table><thead><tr><th>Unit</th><th>Fingerprint</th><th>Framework</th>"
        f"<th>Image</th><th>Datasets (digest)</th></tr></thead><tbody>{units}</tbody></table>"
    )


def _plain(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


# -- markdown -------------------------------------------------------------------------------


def report_markdown(report: Report) -> str:
    lines = [f"## {report.title}", ""]
    if report.gate is not None:
        for policy in report.gate.policies:
            lines += _policy_markdown(policy)
    lines += [
        "| Evaluation | Verdict | Aggregate | Model | Verified |",
        "|---|---|---|---|---|",
    ]
    for e in report.evaluations:
        entry = e.entry
        verdict = (
            "❌ not recorded"
            if entry is None
            else f"{MD_MARK[entry.verdict == 'pass']} {entry.verdict}"
        )
        lines.append(
            f"| `{e.name}` | {verdict} | {score(entry.aggregate) if entry else '—'} "
            f"| `{entry.model if entry else '—'}` "
            f"| {MD_MARK[bool(e.trust and e.trust.verified)]} |"
        )
    lines.append("")
    for e in report.evaluations:
        lines += _evaluation_markdown(e)
    return "\n".join(lines).rstrip() + "\n"


def _policy_markdown(policy: PolicyGate) -> list[str]:
    model = f" — model `{policy.model}`" if policy.model else ""
    answer = "✅ yes" if policy.ok else "❌ no"
    lines = [
        f"### Policy `{policy.policy}`{model}: may be promoted? {answer}",
        "",
        "| Requirement | " + " | ".join(GATE_CHECKS) + " |",
        "|" + "---|" * (1 + len(GATE_CHECKS)),
    ]
    for row in policy.rows:
        lines.append(
            f"| `{row.evaluation}` | "
            + " | ".join(cells(row.findings, GATE_CHECKS, MD_MARK))
            + " |"
        )
    reasons = [
        f"- `{r.evaluation}` **{f.check}**: {md(f.detail)}"
        for r in policy.rows
        for f in r.findings
        if f.ok is False
    ]
    return [*lines, "", *reasons, ""] if reasons else [*lines, ""]


def _evaluation_markdown(e: EvaluationReport) -> list[str]:
    entry = e.entry
    if entry is None:
        return [f"### `{e.name}`: not recorded", "", md(e.problem or "no ledger entry"), ""]
    mark = MD_MARK[entry.verdict == "pass"]
    lines = [
        f"### {mark} `{e.name}`: {entry.verdict}, aggregate {score(entry.aggregate)}",
        "",
        f"Model `{entry.model}` revision `{entry.model_identity.get('revision', '?')}`"
        + (f", min_score {entry.gates.min_score:g}" if entry.gates.min_score is not None else "")
        + (
            f", collection threshold {entry.gates.collection_threshold:g}"
            if entry.gates.collection_threshold is not None
            else ""
        )
        + ".",
        "",
    ]
    lines += [f"- {md(r)}" for r in entry.reasons]
    if entry.reasons:
        lines.append("")
    units = _units(e.envelope)
    lines += [
        "| Benchmark | Score | Threshold | Passed | Framework |",
        "|---|---|---|---|---|",
    ]
    for b in entry.benchmarks:
        threshold = "—" if b.threshold is None else f"{b.threshold:g}"
        lines.append(
            f"| `{b.key}` | {score(b.score)} | {threshold} "
            f"| {MD_MARK[b.passed]} | {md(_framework(units.get(b.key)))} |"
        )
    lines.append("")
    if e.trend:
        lines.append("Trend: " + _trend_markdown(e.trend))
        lines.append("")
    if e.trust is not None:
        t = e.trust
        lines.append(
            f"Trust: signed {MD_MARK[t.signed]}, verified {MD_MARK[t.verified]} — {md(t.detail)}"
        )
        if t.reference:
            lines.append(f"Result: `{t.reference}`")
        lines.append("")
    if e.runs:
        links = [f"[{r.label}]({r.target})" if r.url else f"`{r.target}`" for r in e.runs]
        lines += ["MLflow: " + ", ".join(links), ""]
    if e.failed:
        lines += ["Failed units:", *(f"- `{f.key}`: {md(f.reason)}" for f in e.failed), ""]
    return lines


def _trend_markdown(points: Sequence[TrendPoint]) -> str:
    parts = []
    for point in points:
        text = f"`{point.model_revision}@{point.commit[:7]}` {score(point.entry.aggregate)}"
        parts.append(f"**▼ {text} (regression)**" if point.regression else text)
    return " → ".join(parts)
