"""A complete, scored evaluation becomes a result: signed and published (when a signing key is
at hand) and written to the ledger. A publishing failure leaves the result recorded in MLflow
and pending — not in the ledger, so `--commit` commits only published results and gate and
audit never meet an unsigned entry: the next apply publishes it without model calls, then
writes and commits its ledger entry."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from evalhub.app.ledger import write_entry
from evalhub.app.project import Project
from evalhub.app.publish import Published, publish_result
from evalhub.app.record import Scored
from evalhub.core.errors import PublishError
from evalhub.core.ledger import LedgerEntry, ledger_entry
from evalhub.core.result import EvaluationResult
from evalhub.core.runs import RunFacts, publication_tags
from evalhub.ports import Publisher

Publish = Callable[[EvaluationResult], Published]


def publishing_to(project: Project, facts: RunFacts, target: Publisher) -> Publish:
    """How results are signed and published to `target`: the one seam between apply and
    publishing."""
    return lambda result: publish_result(project, result, facts.machine, target)


@dataclass(frozen=True)
class Concluded:
    ledger: str | None  # the ledger file written, relative to the project root
    entry: LedgerEntry | None  # None: pending publication, nothing written
    published: str | None = None  # reference@digest of the signed result
    publish_error: str | None = None  # why it is not published yet
    tags: Mapping[str, str] = field(default_factory=dict)  # the evaluation run's publication


def conclude(
    project: Project,
    scored: Scored,
    facts: RunFacts,
    tracking_uri: str,
    publish: Publish | None,
    ledger: bool = True,
) -> Concluded:
    """Publish the scored result (with `publish`, None: not signing) and write its ledger
    (unless `ledger` is False: an evaluation no spec defines — a job submitted to `evalhub
    serve` — is recorded, signed and published, but the git ledger holds the specs' results)."""
    write = write_entry if ledger else (lambda project, entry: None)
    evaluation = scored.scheduled.evaluation
    result = EvaluationResult.build(
        evaluation,
        scored.score,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        evalhub_version=facts.evalhub_version,
        spec_commit=facts.commit,
        source=facts.source,
        tracking_uri=tracking_uri,
        run_id=scored.run_id,
        unit_runs=scored.found.runs,
    )
    files = [spec_file(project, evaluation.source)]
    entry = ledger_entry(result, spec_files=files)
    if publish is None:
        return Concluded(write(project, entry), entry)
    try:
        published = publish(result)
    except PublishError as exc:
        return Concluded(None, None, publish_error=exc.message)
    entry = ledger_entry(
        result,
        spec_files=files,
        published=published.pinned,
        attestation_digest=published.attestation_digest,
        signer_key_id=published.key_id,
    )
    tags = publication_tags(
        reference=published.reference,
        digest=published.digest,
        attestation_digest=published.attestation_digest,
        key_id=published.key_id,
    )
    return Concluded(write(project, entry), entry, published.pinned, tags=tags)


def spec_file(project: Project, source: str) -> str:
    """A spec file as the ledger names it: relative to the project root, posix."""
    path = Path(os.path.abspath(source))
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return source
