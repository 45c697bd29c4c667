"""`evalhub report`: per evaluation, what the ledger records, whether it verifies (the code of
`evalhub verify`, the ledger compared with the attestation as the gate does), its trend over
the ledger's git history, the reproducibility envelope read from the verified result, failed
units from the state store, and the gate's answer for each Policy. Rendering is pure:
evalhub.core.render_report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from evalhub.app.compose import head_commit
from evalhub.app.gate import gate
from evalhub.app.ledger_history import LedgerRevision, current_entry, ledger_histories
from evalhub.app.project import Project
from evalhub.app.specs import load_specs
from evalhub.app.state import open_state_store, tracking_uri
from evalhub.app.verifications import Verifications
from evalhub.core import records
from evalhub.core.attested import record_differences
from evalhub.core.errors import ConfigError, EvalhubError, LedgerError, SpecError
from evalhub.core.gate import GateReport
from evalhub.core.ledger import LedgerEntry
from evalhub.core.report_data import (
    EvaluationReport,
    FailedUnit,
    Report,
    Trust,
    envelope,
    ledger_failures,
    run_links,
    trend,
)
from evalhub.core.state import RecordedRun
from evalhub.core.suggest import suggest


def report(
    project: Project,
    evaluations: Sequence[str] = (),
    policies: Sequence[str] = (),
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
    store: bool = True,
) -> Report:
    """The report of `evaluations` (default: those `policies` require when some are named,
    else every evaluation the specs define or the ledger holds), with the gate's answer for
    `policies` (default: every Policy). `store` False leaves the state store closed (no
    failed-unit reasons beyond the ledger's)."""
    verify = Verifications(project, key_files, insecure)
    gated = _gate(project, policies, key_files, insecure, verify)
    names = _names(project, evaluations, gated if policies else None)
    failed_runs = _failed_runs(project) if store else {}
    try:
        histories = ledger_histories(project, names)
    except LedgerError:  # not a git repository: the working tree's entries alone
        histories = {}
    return Report(
        tuple(
            _evaluation(project, name, verify, histories.get(name, []), failed_runs.get(name, []))
            for name in names
        ),
        gated,
        revision=head_commit(project.root),
    )


def _gate(
    project: Project,
    policies: Sequence[str],
    key_files: list[Path] | None,
    insecure: bool | None,
    verify: Verifications,
) -> GateReport | None:
    """The gate's answer for `policies` (default: every Policy; None when there is none)."""
    try:
        return gate(project, list(policies), None, key_files, insecure, verifier=verify)
    except (ConfigError, SpecError):
        # No Policy, or specs that do not validate now: the ledger still has a report to
        # give, without a gate's answer; asked for a Policy by name, the error is the answer.
        if policies:
            raise
        return None


def _names(project: Project, asked: Sequence[str], gated: GateReport | None) -> list[str]:
    recorded = sorted(p.stem for p in (project.root / project.config.ledger.dir).glob("*.json"))
    try:
        defined = sorted(load_specs(project, project.spec_source()).validation.specs.evaluations)
    except EvalhubError:
        defined = []
    known = sorted(set(recorded) | set(defined))
    for name in asked:
        if name not in known:
            raise LedgerError(
                f"no evaluation named {name!r}: the specs do not define it and the ledger "
                "holds no entry for it",
                suggest(name, known, "evaluations"),
            )
    if asked:
        return list(dict.fromkeys(asked))
    if gated is not None and gated.policies:
        return list(dict.fromkeys(r.evaluation for p in gated.policies for r in p.rows))
    return known


def _evaluation(
    project: Project,
    name: str,
    verify: Verifications,
    revisions: list[LedgerRevision],
    failed_runs: list[RecordedRun],
) -> EvaluationReport:
    try:
        entry = current_entry(project, name)
    except LedgerError as exc:
        return EvaluationReport(name, None, problem=exc.message)
    points = trend([(r.revision.commit, r.revision.time, r.entry) for r in revisions if r.entry])
    commit = next((r.revision.commit for r in reversed(revisions) if r.entry == entry), None)
    trust, layers = _trust(entry, verify)
    return EvaluationReport(
        name,
        entry,
        ledger_commit=commit,
        trust=trust,
        envelope=envelope(entry, layers),
        trend=points,
        failed=tuple(_failures(entry, failed_runs)),
        runs=run_links(entry),
    )


def _trust(entry: LedgerEntry, verify: Verifications) -> tuple[Trust, dict[str, bytes] | None]:
    """Verified only when `evalhub verify` verifies the result the ledger names AND the ledger
    says what the attestation says (a hand-edited ledger is never shown as verified)."""
    publication = entry.publication
    if publication.result is None:
        return Trust(False, False, "the result was not signed and published"), None
    verification = verify(publication.result)
    key = verification.key
    trust = Trust(
        signed=bool(publication.attestation_digest),
        verified=False,
        detail=verification.reason or "not verified",
        reference=publication.result,
        attestation=verification.attestation or publication.attestation_digest,
        key_name=key.name if key else None,
        key_id=key.key_id if key else publication.signer_key_id,
        checks=tuple((c.name, c.detail) for c in verification.passed),
    )
    if not verification.verified:
        return trust, None
    assert key is not None and verification.record is not None
    differences = record_differences(entry, verification.record)
    if differences:
        detail = "the ledger does not match the attested result: " + "; ".join(differences[:3])
        return replace(trust, detail=detail), None
    detail = f"signed by {key.name} ({key.key_id}); the ledger equals the attested result"
    return replace(trust, verified=True, detail=detail), verification.layers


def _failures(entry: LedgerEntry, runs: list[RecordedRun]) -> list[FailedUnit]:
    """Benchmarks without a result in the ledger, and units whose latest run failed (with the
    reason the recorder kept), each once."""
    out = {f.key: f for f in ledger_failures(entry)}
    for run in runs:
        key = run.name.partition("/")[2] or run.name
        reason = run.tags.get(records.ERROR) or f"the latest run is {run.status}"
        out[key] = FailedUnit(key, f"{reason} (MLflow run {run.run_id})")
    return [out[k] for k in sorted(out)]


def _failed_runs(project: Project) -> dict[str, list[RecordedRun]]:
    """The unit runs that are the latest of their name and did not succeed, by evaluation.
    Only an existing store is opened: a report never creates one."""
    uri = tracking_uri(project)
    if uri.embedded and not (project.state_dir / "mlflow.db").is_file():
        return {}
    try:
        state = open_state_store(project).read(())
    except EvalhubError:
        return {}
    out: dict[str, list[RecordedRun]] = {}
    for run in state.unit_heads().values():
        if run.status != "succeeded":
            out.setdefault(run.evaluation, []).append(run)
    return out
