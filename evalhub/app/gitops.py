"""The ledger's git history, read back: `evalhub history`/`show`, `evalhub audit` and
`evalhub gate`.

- history: every commit that changed `<ledger.dir>/<evaluation>.json`, with the entry it wrote.
- audit: for every such revision, (a) the fingerprint recomputed from the specs as they were at
  the recorded spec commit (`git archive` of that commit, loaded like a working tree), (b) the
  signed result verified in the registry or layout, (c) the ledger equal to what was attested,
  (d) the ledger commit signed by an allowed signer when `ledger.require_signed_commits`, (e) no
  threshold loosened after the result (by the next result, or by the specs at HEAD).
- gate: for each required evaluation of a Policy, the ledger entry in the working tree is
  recorded, fresh (fingerprint of the current specs), verified (signed by a key the policy
  accepts), passing (as attested), not regressed against the previous passing entry in git
  history, and younger than max_age.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from evalhub.app.compose import (
    Revision,
    commit_exists,
    extract_tree,
    file_revisions,
    head_commit,
    is_repository,
    ledger_paths,
    resolve_revision,
    show_file,
    show_prefix,
    verify_commit,
)
from evalhub.app.project import Project, load_project
from evalhub.app.specs import load_specs, resolved_evaluations
from evalhub.app.verify import Verification, verify_result
from evalhub.core.errors import ConfigError, EvalhubError, LedgerError, SpecError
from evalhub.core.fingerprint import FINGERPRINT_VERSION, evaluation_fingerprint, unit_fingerprint
from evalhub.core.gitops import (
    AuditReport,
    AuditRow,
    Finding,
    GateReport,
    GateRow,
    PolicyGate,
    age_of,
    describe_age,
    failed,
    loosened,
    parse_duration,
    passed,
    record_differences,
    recorded_thresholds,
    regression,
    skipped,
    spec_thresholds,
)
from evalhub.core.ledger import LedgerEntry, ledger_path, parse
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.spec import Policy
from evalhub.core.suggest import suggest


@dataclass(frozen=True)
class LedgerRevision:
    """A commit that changed a ledger file, and the entry it left there (None: the file was
    deleted or does not parse, `error` says which)."""

    revision: Revision
    path: str
    entry: LedgerEntry | None
    error: str | None = None


def _require_repository(project: Project) -> None:
    if not is_repository(project.root) or head_commit(project.root) is None:
        raise LedgerError(
            f"{project.root} is not a git repository with commits: the ledger's history is "
            "read from git",
            "run this in the spec repository (a clone with its full history: fetch-depth 0)",
        )


def _since(project: Project, since: str | None) -> str | None:
    if since is None:
        return None
    commit = resolve_revision(project.root, since)
    if commit is None:
        raise ConfigError(
            f"--since {since!r} is not a commit of this repository",
            "give a commit, tag or branch (e.g. HEAD~10 or v1.2.0)",
        )
    return commit


def read_revision(project: Project, path: str, revision: Revision) -> LedgerRevision:
    text = show_file(project.root, revision.commit, f"./{path}")
    if text is None:
        return LedgerRevision(revision, path, None, "the ledger file was deleted")
    try:
        return LedgerRevision(revision, path, parse(text))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return LedgerRevision(
            revision, path, None, f"the ledger file is not a ledger entry: {where}: {first['msg']}"
        )


def ledger_history(
    project: Project, evaluation: str, since: str | None = None
) -> list[LedgerRevision]:
    """Every revision of the evaluation's ledger file, oldest first."""
    _require_repository(project)
    path = ledger_path(project.config.ledger.dir, evaluation)
    revisions = file_revisions(project.root, f"./{path}", _since(project, since))
    return [read_revision(project, path, r) for r in revisions]


def current_entry(project: Project, evaluation: str) -> LedgerEntry:
    """The evaluation's ledger entry in the working tree."""
    path = project.root / ledger_path(project.config.ledger.dir, evaluation)
    if not path.is_file():
        raise LedgerError(
            f"no ledger entry for {evaluation!r} ({path.relative_to(project.root)})",
            "`evalhub apply` writes it; check the evaluation's name",
        )
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"{path.relative_to(project.root)} is not a ledger entry: {exc}") from exc


# -- the specs as they were at a commit --------------------------------------------------------


class SpecsAtCommits:
    """Resolved evaluations at any commit, each commit extracted and resolved once."""

    def __init__(self, project: Project, workdir: Path) -> None:
        self.project = project
        self.workdir = workdir
        self.prefix = self._prefix()
        self._cache: dict[str, dict[str, ResolvedEvaluation] | str] = {}

    def _prefix(self) -> str:
        return show_prefix(self.project.root)  # the project may live below the git root

    def at(self, commit: str) -> dict[str, ResolvedEvaluation] | str:
        """The evaluations at `commit`, or why they cannot be read."""
        if commit not in self._cache:
            self._cache[commit] = self._load(commit)
        return self._cache[commit]

    def _load(self, commit: str) -> dict[str, ResolvedEvaluation] | str:
        tree = self.workdir / commit
        try:
            extract_tree(self.project.root, commit, tree)
            root = tree / self.prefix
            project = load_project(root) if (root / "evalhub.yaml").is_file() else None
            if project is None:
                project = Project(root, self.project.config, None)
            evaluations = resolved_evaluations(project, project.spec_source())
        except SpecError as exc:
            first = exc.diagnostics[0] if exc.diagnostics else None
            detail = f": {first.message}" if first else ""
            count = len(exc.diagnostics)
            return f"the specs at {commit[:12]} do not validate ({count} errors{detail})"
        except EvalhubError as exc:
            return exc.message
        return {e.name: e for e in evaluations}

    def source_of(self, commit: str, evaluation: ResolvedEvaluation) -> str:
        """The evaluation's spec file relative to the project root at that commit."""
        root = (self.workdir / commit / self.prefix).resolve()
        try:
            return Path(evaluation.source).resolve().relative_to(root).as_posix()
        except ValueError:
            return evaluation.source


@contextmanager
def specs_at_commits(project: Project) -> Iterator[SpecsAtCommits]:
    workdir = Path(tempfile.mkdtemp(prefix="evalhub-audit-"))
    try:
        yield SpecsAtCommits(project, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- audit -------------------------------------------------------------------------------------


class _Verifier:
    """verify_result, once per published reference."""

    def __init__(self, project: Project, key_files: list[Path] | None, insecure: bool | None):
        self.project, self.key_files, self.insecure = project, key_files, insecure
        self._seen: dict[str, Verification] = {}

    def __call__(self, reference: str) -> Verification:
        if reference not in self._seen:
            self._seen[reference] = verify_result(
                self.project, reference, self.key_files, self.insecure
            )
        return self._seen[reference]


def audit(
    project: Project,
    since: str | None = None,
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
) -> AuditReport:
    """Check every ledger revision in git history (after `since`); see the module docstring."""
    _require_repository(project)
    root = project.root
    head = head_commit(root)
    after = _since(project, since)
    verifier = _Verifier(project, key_files, insecure)
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
        head_specs = specs.at(head) if head else "no HEAD"
        for path in ledger_paths(root, settings.dir):
            revisions = [read_revision(project, path, r) for r in file_revisions(root, f"./{path}")]
            window = {r.commit for r in file_revisions(root, f"./{path}", after)} if after else None
            for index, revision in enumerate(revisions):
                if window is not None and revision.revision.commit not in window:
                    continue
                later = next((r.entry for r in revisions[index + 1 :] if r.entry), None)
                rows.append(
                    _audit_revision(project, specs, verifier, revision, later, head_specs, allowed)
                )
    rows.sort(key=lambda r: (r.time, r.path))
    return report


def _audit_revision(
    project: Project,
    specs: SpecsAtCommits,
    verify: _Verifier,
    revision: LedgerRevision,
    later: LedgerEntry | None,
    head_specs: dict[str, ResolvedEvaluation] | str,
    allowed: Path | None,
) -> AuditRow:
    name = Path(revision.path).stem
    row = AuditRow(revision.revision.commit, revision.revision.time, revision.path, name)
    entry = revision.entry
    if entry is None:
        assert revision.error is not None
        deleted = revision.error == "the ledger file was deleted"
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
        row.findings.append(failed("attestation", "the result was not signed and published"))
    else:
        verification = verify(entry.publication.result)
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
    row.findings.append(_signature_check(project, revision.revision.commit, allowed))
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


# -- gate --------------------------------------------------------------------------------------


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
) -> GateReport:
    now = now or datetime.now(UTC)
    policies, evaluations = select_policies(project, list(names or []), model)
    by_name = {e.name: e for e in evaluations}
    verifier = _Verifier(project, key_files, insecure)
    repository = is_repository(project.root) and head_commit(project.root) is not None
    report = GateReport([])
    for policy in policies:
        rows = [
            _gate_row(project, policy, by_name[name], verifier, repository, now)
            for name in policy.spec.require
        ]
        report.policies.append(PolicyGate(policy.metadata.name, policy.spec.model, rows))
    return report


def _gate_row(
    project: Project,
    policy: Policy,
    evaluation: ResolvedEvaluation,
    verify: _Verifier,
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
        row.findings.append(failed("verified", "the result was not signed and published"))
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
    if record is None:
        row.findings.append(skipped("passing", "no verified result to judge"))
    elif record.verdict == "pass":
        aggregate = "none" if record.aggregate is None else f"{record.aggregate:.4f}"
        row.findings.append(passed("passing", f"attested pass, aggregate {aggregate}"))
    else:
        row.findings.append(failed("passing", "attested fail: " + "; ".join(record.reasons)))
    row.findings.append(_regression(project, entry, repository))
    if policy.spec.max_age is None:
        row.findings.append(skipped("age", "the policy sets no max_age"))
    else:
        age, limit = age_of(entry, now), parse_duration(policy.spec.max_age)
        row.findings.append(
            failed("age", f"recorded {describe_age(age)} ago, older than {policy.spec.max_age}")
            if age > limit
            else passed("age", f"recorded {describe_age(age)} ago (max {policy.spec.max_age})")
        )
    return row


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
    if accepted and key.name not in accepted and key.key_id not in accepted:
        return failed(
            "verified",
            f"signed by {key.name} ({key.key_id}); the policy accepts only {', '.join(accepted)}",
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
