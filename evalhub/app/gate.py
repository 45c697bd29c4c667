"""`evalhub gate`: may the model be promoted?

For each evaluation a Policy requires, the ledger entry in the working tree is recorded, fresh
(fingerprint of the current specs), verified (signed by a key the policy accepts), passing (as
attested), not regressed against the previous passing entry in git history, and younger than
max_age.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from evalhub.app import compose
from evalhub.app.compose import head_commit, is_repository
from evalhub.app.keys import keyless, trusted_keys
from evalhub.app.ledger_history import current_entry, ledger_history
from evalhub.app.project import Project
from evalhub.app.specs import load_specs
from evalhub.app.verifications import Verifications
from evalhub.app.verify import ImageVerification, Verification
from evalhub.core.attested import record_differences
from evalhub.core.errors import ConfigError, LedgerError, SpecError
from evalhub.core.findings import NO_KEY_HINT, NOT_SIGNED, Finding, failed, passed, skipped
from evalhub.core.fingerprint import evaluation_fingerprint, image_digest, unit_fingerprint
from evalhub.core.gate import (
    GateReport,
    GateRow,
    PolicyGate,
    age_of,
    describe_age,
    parse_duration,
    regression,
)
from evalhub.core.ledger import LedgerEntry, ledger_path
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.result import ResultRecord
from evalhub.core.spec import Policy
from evalhub.core.spec.policy import accepts
from evalhub.core.suggest import suggest
from evalhub.core.thresholds import recorded_thresholds, spec_thresholds


def select_policies(
    project: Project, names: list[str], model: str | None
) -> tuple[list[Policy], list[ResolvedEvaluation]]:
    """The Policies to gate (by name, by model, or all) and the current evaluations."""
    loaded = load_specs(project, project.spec_source())
    if not loaded.validation.ok:
        raise SpecError(loaded.validation.diagnostics)
    available = {n: located.spec for n, located in loaded.validation.specs.policies.items()}
    if not available:
        raise ConfigError("the specs define no Policy to gate on", "write a `kind: Policy` spec")
    chosen = []
    for name in names:
        if name not in available:
            raise ConfigError(f"no Policy named {name!r}", suggest(name, available, "policies"))
        chosen.append(available[name])
    if not names:
        chosen = list(available.values())
    if model is not None:
        chosen = [p for p in chosen if p.spec.model == model]
        if not chosen:
            raise ConfigError(f"no Policy promotes the model {model!r}")
    return chosen, resolve(loaded.validation.specs, loaded.digests)


def gate(
    project: Project,
    names: list[str] | None = None,
    model: str | None = None,
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
    now: datetime | None = None,
    verifier: Verifications | None = None,
) -> GateReport:
    """`verifier` lets a caller that verifies the same results (the report) share one."""
    now = now or datetime.now(UTC)
    policies, evaluations = select_policies(project, list(names or []), model)
    by_name = {e.name: e for e in evaluations}
    verifier = verifier or Verifications(project, key_files, insecure)
    repository = is_repository(project.root) and head_commit(project.root) is not None
    report = GateReport([])
    for policy in policies:
        rows = [
            _gate_row(project, policy, by_name[name], verifier, repository, now)
            for name in policy.spec.require
        ]
        report.policies.append(PolicyGate(policy.metadata.name, policy.spec.model, rows))
    if not report.ok and keyless(project) and _unpublished(report):
        report.hint = NO_KEY_HINT
    return report


def _unpublished(report: GateReport) -> bool:
    """Some required result is missing from the ledger or unsigned."""
    return any(
        f.ok is False and (f.check == "recorded" or f.detail == NOT_SIGNED)
        for policy in report.policies
        for row in policy.rows
        for f in row.findings
    )


def _gate_row(
    project: Project,
    policy: Policy,
    evaluation: ResolvedEvaluation,
    verify: Verifications,
    repository: bool,
    now: datetime,
) -> GateRow:
    row = GateRow(evaluation.name)
    try:
        entry = current_entry(project, evaluation.name)
    except LedgerError as exc:
        row.findings.append(failed("recorded", exc.message))
        return row
    row.aggregate, row.verdict = entry.aggregate, entry.verdict
    row.result = entry.publication.result
    where = ledger_path(project.config.ledger.dir, evaluation.name)
    row.findings.append(passed("recorded", f"{where}, scored {entry.time}"))
    row.findings.append(_fresh(entry, evaluation))
    record = None
    if entry.publication.result is None:
        row.findings.append(failed("verified", NOT_SIGNED))
    else:
        verification = verify(entry.publication.result)
        finding = _accepted_signer(policy, verification)
        if finding.ok and verification.record is not None:
            differences = record_differences(entry, verification.record)
            if differences:
                finding = failed(
                    "verified",
                    "the ledger does not match the attested result: " + "; ".join(differences[:3]),
                )
            else:
                record = verification.record
        row.findings.append(finding)
    row.findings.append(_passing(record))
    row.findings.append(_regression(project, entry, repository))
    row.findings.append(_age(policy, age_of(entry, now), "recorded"))
    return row


def _passing(record: ResultRecord | None) -> Finding:
    if record is None:
        return skipped("passing", "no verified result to judge")
    if record.verdict == "pass":
        aggregate = "none" if record.aggregate is None else f"{record.aggregate:.4f}"
        return passed("passing", f"attested pass, aggregate {aggregate}")
    return failed("passing", "attested fail: " + "; ".join(record.reasons))


def _age(policy: Policy, age: timedelta, what: str) -> Finding:
    limit = policy.spec.max_age
    if limit is None:
        return skipped("age", "the policy sets no max_age")
    if age > parse_duration(limit):
        return failed("age", f"{what} {describe_age(age)} ago, older than {limit}")
    return passed("age", f"{what} {describe_age(age)} ago (max {limit})")


def _fresh(entry: LedgerEntry, evaluation: ResolvedEvaluation) -> Finding:
    fingerprint = evaluation_fingerprint(evaluation)
    if fingerprint == entry.fingerprint:
        return passed("fresh", f"fingerprint {fingerprint[:12]} is the current specs'")
    recorded = {b.key: b.unit_fingerprint for b in entry.benchmarks}
    current = {u.key: unit_fingerprint(u) for u in evaluation.units}
    changed = sorted(k for k in current if k in recorded and recorded[k] != current[k])
    added = sorted(set(current) - set(recorded))
    removed = sorted(set(recorded) - set(current))
    what = [
        *(f"{k} changed" for k in changed),
        *(f"{k} added" for k in added),
        *(f"{k} removed" for k in removed),
    ] or _scoring_changes(entry, evaluation)
    return failed(
        "fresh",
        f"stale: recorded for {entry.fingerprint[:12]}, the specs now give {fingerprint[:12]} "
        f"({', '.join(what)}); run `evalhub apply`",
    )


def _scoring_changes(entry: LedgerEntry, evaluation: ResolvedEvaluation) -> list[str]:
    """What changed in how the units are scored: weights and thresholds, old → new."""
    before = recorded_thresholds(entry.benchmarks, entry.gates)
    before |= {f"{b.key} weight": b.weight for b in entry.benchmarks}
    after = spec_thresholds(evaluation) | {f"{u.key} weight": u.weight for u in evaluation.units}
    changes = [
        f"{key} {_num(before.get(key))} → {_num(after.get(key))}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    return changes or ["scoring changed"]


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _accepted_signer(policy: Policy, verification: Verification) -> Finding:
    if not verification.verified:
        return failed("verified", verification.reason or "not verified")
    key = verification.key
    assert key is not None
    accepted = policy.spec.signed_by
    if not accepts(accepted, key.name, key.key_id):
        return failed(
            "verified",
            f"signed by {key.name} ({key.key_id}); the policy accepts only "
            + ", ".join(str(s) for s in accepted),
        )
    return passed("verified", f"signed by {key.name} ({key.key_id})")


def _regression(project: Project, entry: LedgerEntry, repository: bool) -> Finding:
    if not repository:
        return skipped("regression", "not a git repository: no history to compare with")
    baseline = None
    for revision in reversed(ledger_history(project, entry.evaluation)):
        earlier = revision.entry
        if earlier is None or earlier.time >= entry.time:
            continue
        if earlier.verdict == "pass":
            baseline = earlier
            break
    return regression(entry, baseline)


# -- gating a model image by what is attached to it ------------------------------------------


def gate_model_image(
    project: Project,
    image: str,
    names: list[str] | None = None,
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
    now: datetime | None = None,
) -> GateReport:
    """May this exact model image be promoted? Each evaluation a Policy requires must have a
    result attached to the image (its OCI referrers) that verifies, is signed by a key the
    Policy accepts, is fresh against the current specs, passes, and is younger than max_age.
    Reads the registry, the specs and the keys: no ledger, no git history (so no regression
    check: the image carries no history)."""
    now = now or datetime.now(UTC)
    attached = compose.model_image(project, image, insecure)
    policies, evaluations = select_policies(project, list(names or []), None)
    by_name = {e.name: e for e in evaluations}
    digest = image.rpartition("@")[2]
    if not names:
        policies = [p for p in policies if _promotes_image(p, by_name, digest)]
        if not policies:
            raise ConfigError(
                f"no Policy promotes a model whose image is {digest}",
                "set `image` in the Model spec to this digest, or name a Policy with --policy",
            )
    verification = attached.verify(trusted_keys(project, key_files))
    report = GateReport([])
    for policy in policies:
        rows = [
            _image_row(policy, by_name[name], verification, now) for name in policy.spec.require
        ]
        report.policies.append(PolicyGate(policy.metadata.name, policy.spec.model, rows))
    return report


def _promotes_image(
    policy: Policy, evaluations: dict[str, ResolvedEvaluation], digest: str
) -> bool:
    models = [evaluations[n].model for n in policy.spec.require if n in evaluations]
    return any(m.image is not None and image_digest(m.image) == digest for m in models)


def _image_row(
    policy: Policy, evaluation: ResolvedEvaluation, image: ImageVerification, now: datetime
) -> GateRow:
    row = GateRow(evaluation.name)
    current = evaluation_fingerprint(evaluation)
    found = [r for r in image.results if r.record and r.record.evaluation == evaluation.name]
    if not found:
        why = image.reason or f"no result of {evaluation.name} is attached to {image.image}"
        row.findings.append(failed("recorded", why))
        return row
    verified = [r for r in found if r.verified]
    chosen = max(
        verified or found,
        key=lambda r: (r.record is not None and r.record.fingerprint == current, _created(r)),
    )
    record = chosen.record
    assert record is not None
    row.aggregate, row.verdict, row.result = record.aggregate, record.verdict, chosen.reference
    row.findings.append(passed("recorded", f"attached to {image.image}, scored {record.created}"))
    if record.fingerprint == current:
        row.findings.append(passed("fresh", f"fingerprint {current[:12]} is the current specs'"))
    else:
        row.findings.append(
            failed(
                "fresh",
                f"stale: attested for {record.fingerprint[:12]}, the specs now give "
                f"{current[:12]}; run `evalhub apply`",
            )
        )
    finding = _accepted_signer(policy, chosen)
    row.findings.append(finding)
    row.findings.append(_passing(record if finding.ok else None))
    row.findings.append(
        skipped("regression", "an image carries no history; `evalhub gate` compares with git")
    )
    row.findings.append(_age(policy, now - _created(chosen), "scored"))
    return row


def _created(verification: Verification) -> datetime:
    record = verification.record
    if record is None:
        return datetime.min.replace(tzinfo=UTC)
    created = datetime.fromisoformat(record.created)
    return created if created.tzinfo else created.replace(tzinfo=UTC)
