"""`evalhub audit`: every result the ledger's git history records, checked again.

For every revision of `<ledger.dir>/<evaluation>.json` (after `since`): (a) the fingerprint
recomputed from the specs as they were at the recorded spec commit, (b) the signed result
verified in the registry or layout, (c) the ledger equal to what was attested, (d) the ledger
commit signed by an allowed signer when `ledger.require_signed_commits`, (e) no threshold
loosened after the result (by the next result, or by the specs at HEAD). The result's
signature and the ledger commit's are checked against what was trusted at that revision (the
keys and allowed signers of its evalhub.yaml), unless `--key` names the keys for all.

Besides the revisions, every commit that changed the trust settings or loosened a Policy is a
finding of its own, accepted only when signed by the previous trust root (see
evalhub.core.trust and evalhub.app.trust_history).
"""

from __future__ import annotations

from pathlib import Path

from evalhub.app.compose import (
    commit_exists,
    file_revisions,
    head_commit,
    ledger_paths,
    verify_commit,
)
from evalhub.app.ledger_history import (
    DELETED,
    LedgerRevision,
    read_revision,
    require_repository,
    since_commit,
)
from evalhub.app.project import Project
from evalhub.app.specs_at_commits import SpecsAtCommits, specs_at_commits
from evalhub.app.trust_history import TrustAtCommits, trust_findings
from evalhub.app.verifications import Verifications
from evalhub.app.verify import Verification
from evalhub.core.attested import record_differences
from evalhub.core.audit import AuditReport, AuditRow
from evalhub.core.errors import ConfigError
from evalhub.core.findings import NOT_SIGNED, Finding, failed, passed, skipped
from evalhub.core.fingerprint import FINGERPRINT_VERSION, evaluation_fingerprint
from evalhub.core.ledger import LedgerEntry
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.thresholds import loosened, recorded_thresholds, spec_thresholds
from evalhub.core.trust import TrustSettings


def audit(
    project: Project,
    since: str | None = None,
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
) -> AuditReport:
    """Check every ledger revision in git history (after `since`); see the module docstring."""
    require_repository(project)
    root = project.root
    head = head_commit(root)
    after = since_commit(project, since)
    rows: list[AuditRow] = []
    settings = project.config.ledger
    allowed = root / settings.allowed_signers if settings.allowed_signers else None
    if allowed is not None and not allowed.is_file():
        raise ConfigError(
            f"ledger.allowed_signers: {settings.allowed_signers} does not exist",
            "write git's allowed-signers file there (one `email key-type key` per line)",
        )
    report = AuditReport(rows, since, head)
    with specs_at_commits(project) as specs:
        trust = TrustAtCommits(project, specs, specs.workdir / "trust")
        verifier = _RevisionVerifier(project, trust, key_files, insecure)
        report.findings = trust_findings(project, trust, after)
        head_specs = specs.at(head) if head else "no HEAD"
        for path in ledger_paths(root, settings.dir):
            revisions = [read_revision(project, path, r) for r in file_revisions(root, f"./{path}")]
            window = {r.commit for r in file_revisions(root, f"./{path}", after)} if after else None
            for index, revision in enumerate(revisions):
                if window is not None and revision.revision.commit not in window:
                    continue
                later = next((r.entry for r in revisions[index + 1 :] if r.entry), None)
                rows.append(
                    _audit_revision(project, specs, verifier, revision, later, head_specs, trust)
                )
    rows.sort(key=lambda r: (r.time, r.path))
    return report


class _RevisionVerifier:
    """`verify_result` with the keys trusted at each revision, once per key set and result;
    with `--key` files, those keys for every revision."""

    def __init__(
        self,
        project: Project,
        trust: TrustAtCommits,
        key_files: list[Path] | None,
        insecure: bool | None,
    ) -> None:
        self.project, self.trust, self.insecure = project, trust, insecure
        self._given = Verifications(project, key_files, insecure) if key_files else None
        self._by_keys: dict[object, Verifications] = {}

    def __call__(self, commit: str, reference: str) -> Verification | str:
        """The verification, or why no key was trusted at `commit`."""
        if self._given is not None:
            return self._given(reference)
        files = self.trust.key_files(commit)
        if isinstance(files, str):
            return files
        settings = self.trust.settings(commit)
        keys = settings.keys if isinstance(settings, TrustSettings) else commit
        if keys not in self._by_keys:
            self._by_keys[keys] = Verifications(self.project, files, self.insecure)
        return self._by_keys[keys](reference)


def _audit_revision(
    project: Project,
    specs: SpecsAtCommits,
    verify: _RevisionVerifier,
    revision: LedgerRevision,
    later: LedgerEntry | None,
    head_specs: dict[str, ResolvedEvaluation] | str,
    trust: TrustAtCommits,
) -> AuditRow:
    name = Path(revision.path).stem
    row = AuditRow(revision.revision.commit, revision.revision.time, revision.path, name)
    entry = revision.entry
    if entry is None:
        assert revision.error is not None
        deleted = revision.error == DELETED
        row.findings.append(
            skipped("ledger", revision.error) if deleted else failed("ledger", revision.error)
        )
        return row
    row.evaluation, row.verdict = entry.evaluation, entry.verdict
    row.fingerprint = entry.fingerprint
    if entry.evaluation != name:
        row.findings.append(
            failed("ledger", f"{revision.path} holds the entry of {entry.evaluation!r}")
        )
    row.findings.append(_fingerprint_check(project, specs, entry))
    verification = None
    if entry.publication.result is None:
        row.findings.append(failed("attestation", NOT_SIGNED))
    else:
        verified = verify(revision.revision.commit, entry.publication.result)
        if isinstance(verified, str):
            row.findings.append(failed("attestation", verified))
        else:
            verification = verified
            row.findings.append(_attestation_check(entry, verification))
    if verification is not None and verification.record is not None:
        differences = record_differences(entry, verification.record)
        row.findings.append(
            failed("scores", "; ".join(differences[:4]))
            if differences
            else passed("scores", "scores, gates and verdict equal the attested result")
        )
    else:
        row.findings.append(skipped("scores", "no attested result to compare with"))
    commit = revision.revision.commit
    row.findings.append(_signature_check(project, commit, trust.allowed_signers(commit)))
    row.findings.append(_threshold_check(entry, later, head_specs))
    return row


def _fingerprint_check(project: Project, specs: SpecsAtCommits, entry: LedgerEntry) -> Finding:
    commit = entry.spec_commit
    if commit is None:
        return failed("fingerprint", "the entry names no spec commit")
    if not commit_exists(project.root, commit):
        return failed("fingerprint", f"spec commit {commit[:12]} does not exist in this repository")
    if entry.fingerprint_version != FINGERPRINT_VERSION:
        return skipped(
            "fingerprint",
            f"recorded with fingerprint version {entry.fingerprint_version}; this evalhub "
            f"computes version {FINGERPRINT_VERSION}",
        )
    evaluations = specs.at(commit)
    if isinstance(evaluations, str):
        return failed("fingerprint", evaluations)
    evaluation = evaluations.get(entry.evaluation)
    if evaluation is None:
        return failed(
            "fingerprint", f"spec commit {commit[:12]} defines no evaluation {entry.evaluation!r}"
        )
    fingerprint = evaluation_fingerprint(evaluation)
    if fingerprint != entry.fingerprint:
        return failed(
            "fingerprint",
            f"the specs at {commit[:12]} give {fingerprint[:12]}, the ledger says "
            f"{entry.fingerprint[:12]}",
        )
    source = specs.source_of(commit, evaluation)
    if source not in entry.spec_files:
        return failed(
            "fingerprint",
            f"the evaluation is defined in {source} at {commit[:12]}, the ledger names "
            f"{', '.join(entry.spec_files)}",
        )
    return passed("fingerprint", f"recomputed from the specs at {commit[:12]}")


def _attestation_check(entry: LedgerEntry, verification: Verification) -> Finding:
    if not verification.verified:
        return failed("attestation", verification.reason or "not verified")
    assert verification.key is not None
    publication = entry.publication
    attested = verification.attestation
    if publication.attestation_digest and attested != publication.attestation_digest:
        return failed(
            "attestation",
            f"the verified attestation is {verification.attestation}, the ledger names "
            f"{publication.attestation_digest}",
        )
    if publication.signer_key_id and verification.key.key_id != publication.signer_key_id:
        return failed(
            "attestation",
            f"signed by {verification.key.key_id}, the ledger names {publication.signer_key_id}",
        )
    return passed("attestation", f"signed by {verification.key.name} ({verification.key.key_id})")


def _signature_check(project: Project, commit: str, allowed: Path | None) -> Finding:
    if not project.config.ledger.require_signed_commits:
        return skipped("signature", "ledger.require_signed_commits is off")
    signature = verify_commit(project.root, commit, allowed)
    if signature.good:
        return passed("signature", signature.detail)
    return failed("signature", f"commit {commit[:12]}: {signature.detail}")


def _threshold_check(
    entry: LedgerEntry, later: LedgerEntry | None, head_specs: dict[str, ResolvedEvaluation] | str
) -> Finding:
    before = recorded_thresholds(entry.benchmarks, entry.gates)
    if later is not None:
        changes = loosened(before, recorded_thresholds(later.benchmarks, later.gates))
        where = f"by the next result ({later.time[:19]})"
    elif isinstance(head_specs, dict) and entry.evaluation in head_specs:
        changes = loosened(before, spec_thresholds(head_specs[entry.evaluation]))
        where = "in the specs at HEAD"
    else:
        return skipped("thresholds", "the evaluation is not in the specs at HEAD")
    if changes:
        return failed("thresholds", f"loosened after this result, {where}: " + "; ".join(changes))
    return passed("thresholds", "none loosened since")
