"""What `evalhub report` shows, as plain data, and the pure decisions behind it: the trend of
an evaluation over its ledger history with regressions marked, the reproducibility envelope
read from a verified result's layers, and MLflow run links. evalhub.app.report gathers the
inputs (ledger, verification, gate, store); evalhub.core.render_report draws them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalhub.core.findings import GITOPS_REPORT_VERSION
from evalhub.core.gate import GateReport, regression
from evalhub.core.ledger import LedgerEntry
from evalhub.core.render_table import revision_of

REPORT_VERSION = GITOPS_REPORT_VERSION


@dataclass(frozen=True)
class TrendPoint:
    """One ledger revision of an evaluation: its commit and what it recorded."""

    commit: str
    committed: int  # committer time, seconds since the epoch
    entry: LedgerEntry
    regression: str | None = None  # why this result is a regression (None: it is not)

    @property
    def model_revision(self) -> str:
        return revision_of(self.entry)


@dataclass(frozen=True)
class Trust:
    """The trust state of the current entry, as `evalhub verify` and the gate judge it."""

    signed: bool  # the ledger names a published, attested result
    verified: bool  # verified by a trusted key AND the ledger equals the attested result
    detail: str  # who signed it, or why it is not verified
    reference: str | None = None  # OCI reference@digest
    attestation: str | None = None
    key_name: str | None = None
    key_id: str | None = None
    checks: tuple[tuple[str, str], ...] = ()  # the verification checks that held


@dataclass(frozen=True)
class UnitEnvelope:
    """What identifies one benchmark's run: its fingerprint, framework and data."""

    key: str
    fingerprint: str
    adapter: str | None = None
    framework_version: str | None = None
    image: str | None = None
    datasets: Mapping[str, str] = field(default_factory=dict)  # path -> content digest


@dataclass(frozen=True)
class Envelope:
    """The reproducibility envelope: `verified` says whether it was read from the layers of a
    verified result (else from the ledger alone, and the rest is unknown)."""

    fingerprint: str
    fingerprint_version: int
    spec_commit: str | None
    units: tuple[UnitEnvelope, ...]
    environment: Mapping[str, Any] = field(default_factory=dict)
    verified: bool = False


@dataclass(frozen=True)
class FailedUnit:
    key: str
    reason: str


@dataclass(frozen=True)
class RunLink:
    label: str
    target: str  # a URL to open, or a `runs:/<id>` URI with the store it lives in
    url: bool  # whether `target` is a link a browser can follow


@dataclass(frozen=True)
class EvaluationReport:
    name: str
    entry: LedgerEntry | None
    problem: str | None = None  # why there is no entry to show
    ledger_commit: str | None = None
    trust: Trust | None = None
    envelope: Envelope | None = None
    trend: tuple[TrendPoint, ...] = ()
    failed: tuple[FailedUnit, ...] = ()
    runs: tuple[RunLink, ...] = ()


@dataclass(frozen=True)
class Report:
    evaluations: tuple[EvaluationReport, ...]
    gate: GateReport | None = None
    title: str = "evalhub report"
    revision: str | None = None  # the spec repository's HEAD the report was made at


def trend(points: Sequence[tuple[str, int, LedgerEntry]]) -> tuple[TrendPoint, ...]:
    """The ledger revisions, oldest first, each marked where its aggregate fell below the
    previous passing result by more than the gate allows: the evaluation's max_regression,
    or any drop at all when it sets none (the report shows drops the gate would not fail)."""
    out: list[TrendPoint] = []
    baseline: LedgerEntry | None = None
    for commit, committed, entry in points:
        why = None
        if baseline is not None:
            margin = entry.gates.max_regression
            judged = entry if margin is not None else _with_margin(entry, 0.0)
            finding = regression(judged, baseline)
            if finding.ok is False:
                why = (
                    finding.detail
                    if margin is not None
                    else finding.detail + " (no max_regression set)"
                )
        out.append(TrendPoint(commit, committed, entry, why))
        if entry.verdict == "pass":
            baseline = entry
    return tuple(out)


def _with_margin(entry: LedgerEntry, margin: float) -> LedgerEntry:
    return entry.model_copy(
        update={"gates": entry.gates.model_copy(update={"max_regression": margin})}
    )


def envelope(entry: LedgerEntry, layers: Mapping[str, bytes] | None) -> Envelope:
    """The envelope of `entry`; `layers` are a verified result's (None: not verified, and only
    what the ledger itself says is shown)."""
    spec = _json(layers.get("spec.json")) if layers else {}
    environment = _json(layers.get("environment.json")) if layers else {}
    by_key = {u.get("key"): u for u in spec.get("units", []) if isinstance(u, dict)}
    units = []
    for benchmark in entry.benchmarks:
        unit = by_key.get(benchmark.key) or {}
        provider = _dict(unit.get("provider"))
        files = _dict(unit.get("files"))
        units.append(
            UnitEnvelope(
                key=benchmark.key,
                fingerprint=benchmark.unit_fingerprint,
                adapter=_str(provider.get("adapter")),
                framework_version=_str(provider.get("version")),
                image=_str(provider.get("image")),
                datasets={str(k): str(v) for k, v in sorted(files.items())},
            )
        )
    return Envelope(
        fingerprint=entry.fingerprint,
        fingerprint_version=entry.fingerprint_version,
        spec_commit=entry.spec_commit,
        units=tuple(units),
        environment=environment,
        verified=layers is not None,
    )


def run_links(entry: LedgerEntry) -> tuple[RunLink, ...]:
    """The evaluation's MLflow run and each unit's, against the tracking URI as the ledger
    names it (configured, never a machine's path). An http(s) server gets browser links; any
    other store gets `runs:/<id>` URIs and the store to open them in."""
    uri = entry.mlflow.tracking_uri
    runs = [("evaluation", entry.mlflow.run_id)]
    runs += sorted(entry.mlflow.unit_runs.items())
    out = []
    for label, run_id in runs:
        if not run_id:
            continue
        if uri and uri.startswith(("http://", "https://")):
            out.append(RunLink(label, f"{uri.rstrip('/')}/#/runs/{run_id}", True))
        else:
            where = f" in {uri}" if uri else ""
            out.append(RunLink(label, f"runs:/{run_id}{where}", False))
    return tuple(out)


def ledger_failures(entry: LedgerEntry) -> list[FailedUnit]:
    """Benchmarks of the entry without a result (their unit failed)."""
    return [
        FailedUnit(b.key, f"no result for metric {b.metric!r}")
        for b in entry.benchmarks
        if b.score is None
    ]


def report_json(report: Report) -> str:
    """The report as versioned JSON (what the HTML and markdown show, for tools)."""

    def evaluation(e: EvaluationReport) -> dict[str, Any]:
        return {
            "evaluation": e.name,
            "problem": e.problem,
            "entry": e.entry.model_dump(mode="json") if e.entry else None,
            "ledger_commit": e.ledger_commit,
            "trust": None
            if e.trust is None
            else {
                "signed": e.trust.signed,
                "verified": e.trust.verified,
                "detail": e.trust.detail,
                "reference": e.trust.reference,
                "attestation": e.trust.attestation,
                "key": e.trust.key_id,
            },
            "trend": [
                {
                    "commit": p.commit,
                    "model_revision": p.model_revision,
                    "aggregate": p.entry.aggregate,
                    "verdict": p.entry.verdict,
                    "regression": p.regression,
                }
                for p in e.trend
            ],
            "failed": [{"unit": f.key, "reason": f.reason} for f in e.failed],
        }

    return json.dumps(
        {
            "version": REPORT_VERSION,
            "revision": report.revision,
            "evaluations": [evaluation(e) for e in report.evaluations],
        },
        indent=2,
        sort_keys=True,
    )


def _json(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
