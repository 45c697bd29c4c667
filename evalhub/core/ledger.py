"""The results ledger: one deterministic JSON file per evaluation, `<ledger.dir>/<name>.json`,
committed to the spec repository so that git history is the audit trail. Pure: the time, the
commit and the publication are passed in.

A ledger entry names what was evaluated (fingerprint, spec commit and file, model identity,
collection), what came out (scores, aggregate, gates, verdict, reasons), where the evidence
lives (MLflow runs, OCI reference@digest, attestation digest, signer key id) and when.

Ledger commit messages (one commit may record several evaluations):

    evalhub: record <evaluation> <verdict> <fingerprint[:12]>      one evaluation
    evalhub: record <n> results                                    several evaluations
    <blank line>
    Evalhub-Evaluation: <evaluation>        \
    Evalhub-Fingerprint: <sha256 hex>        | one group per evaluation, sorted by name;
    Evalhub-Verdict: pass|fail               | each group starts with Evalhub-Evaluation
    Evalhub-Result: <reference>@<digest>     | (only when the result was published)
    Evalhub-Spec-Commit: <commit>           /  (only when known)

The trailers are the message's last paragraph, so `git interpret-trailers --parse` and
`git log --format=%(trailers)` read them back.
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, JsonValue, field_validator

from evalhub.core.result import (
    BenchmarkResult,
    EvaluationResult,
    MlflowRuns,
    ResultGates,
    strip_credentials,
)
from evalhub.core.spec.base import Strict

LEDGER_VERSION = 1
SUBJECT_PREFIX = "evalhub: record"
FINGERPRINT_CHARS = 12

TRAILER_EVALUATION = "Evalhub-Evaluation"
TRAILER_FINGERPRINT = "Evalhub-Fingerprint"
TRAILER_VERDICT = "Evalhub-Verdict"
TRAILER_RESULT = "Evalhub-Result"
TRAILER_SPEC_COMMIT = "Evalhub-Spec-Commit"


class LedgerPublication(Strict):
    """The signed OCI result; every field is null when the result is not published."""

    result: str | None = Field(
        default=None, description="The result artifact: `<reference>@sha256:…`."
    )
    attestation_digest: str | None = Field(
        default=None, description="The digest of the signed attestation attached to it."
    )
    signer_key_id: str | None = Field(default=None, description="The signing key's id.")


class LedgerEntry(Strict):
    """One evaluation's recorded result: the file `<ledger.dir>/<evaluation>.json`."""

    format_version: Literal[1] = Field(default=1, description="The ledger format (1).")
    evaluation: str = Field(description="The evaluation's name.")
    fingerprint: str = Field(description="The evaluation fingerprint (sha256 hex).")
    fingerprint_version: int = Field(description="The fingerprint algorithm's version.")
    spec_commit: str | None = Field(description="The spec repository's commit (HEAD).")
    spec_files: list[str] = Field(
        description="The spec file(s) defining the evaluation, relative to the project root."
    )
    model: str = Field(description="The model's name.")
    model_identity: dict[str, JsonValue] = Field(description="What identifies the model.")
    collection: str | None = Field(description="The collection as name@version, if any.")
    benchmarks: list[BenchmarkResult] = Field(
        description="Per-benchmark scores, one entry per key: a key listed twice makes the file "
        "invalid (JSON Schema can forbid only identical entries, evalhub forbids any repeated "
        "key).",
        json_schema_extra={"uniqueItems": True},
    )
    aggregate: float | None = Field(description="The weighted aggregate score.")
    gates: ResultGates = Field(description="The thresholds and gates applied.")
    verdict: Literal["pass", "fail"] = Field(description="The evaluation's verdict.")
    reasons: list[str] = Field(description="Why the verdict is what it is (failures).")
    mlflow: MlflowRuns = Field(description="The MLflow runs holding the result.")
    publication: LedgerPublication = Field(description="The signed OCI result, if published.")
    evalhub_version: str = Field(description="The evalhub that recorded it.")
    time: str = Field(description="When the result was scored (ISO 8601).")

    @field_validator("benchmarks")
    @classmethod
    def _one_entry_per_benchmark(cls, value: list[BenchmarkResult]) -> list[BenchmarkResult]:
        # A reader keyed by name would keep the later of two entries and a reader listing rows
        # would show both: one ledger would say two things. Refuse it wherever it is read.
        first: dict[str, int] = {}
        for index, benchmark in enumerate(value):
            earlier = first.setdefault(benchmark.key, index)
            if earlier != index:
                raise ValueError(
                    f"benchmark {benchmark.key!r} is listed twice (benchmarks[{earlier}] and "
                    f"benchmarks[{index}]); a ledger entry holds one result per benchmark"
                )
        return value


def ledger_entry(
    result: EvaluationResult,
    *,
    spec_files: Sequence[str] | None = None,
    published: str | None = None,
    attestation_digest: str | None = None,
    signer_key_id: str | None = None,
) -> LedgerEntry:
    """The ledger entry of `result`; `published` is the OCI `reference@digest` when the result
    was signed and published (then the attestation digest and signer key id go with it).
    `spec_files` are the evaluation's spec files relative to the project root (default: the
    resolved evaluation's source as it was displayed)."""
    if published is None:
        attestation_digest = signer_key_id = None
    tracking_uri = result.mlflow.tracking_uri
    return LedgerEntry(
        evaluation=result.evaluation,
        fingerprint=result.fingerprint,
        fingerprint_version=result.fingerprint_version,
        spec_commit=result.spec_commit,
        spec_files=list(spec_files) if spec_files is not None else [result.resolved.source],
        model=result.model,
        model_identity=dict(result.model_identity),
        collection=result.collection,
        benchmarks=[b for b in result.benchmarks],
        aggregate=result.aggregate,
        gates=result.gates,
        verdict=result.verdict,
        reasons=list(result.reasons),
        mlflow=MlflowRuns(
            tracking_uri=strip_credentials(tracking_uri) if tracking_uri else None,
            run_id=result.mlflow.run_id,
            unit_runs=dict(result.mlflow.unit_runs),
        ),
        publication=LedgerPublication(
            result=published, attestation_digest=attestation_digest, signer_key_id=signer_key_id
        ),
        evalhub_version=result.evalhub_version,
        time=result.created,
    )


def render(entry: LedgerEntry) -> str:
    """The file's text: sorted keys, 2-space indent, LF, a trailing newline. Floats are written
    as Python's shortest round-trip repr (never NaN or infinity; 1.0 stays 1.0), so the same
    entry always gives the same bytes and a changed score changes one line."""
    data = _finite(entry.model_dump(mode="json"))
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def parse(text: str) -> LedgerEntry:
    return LedgerEntry.model_validate_json(text)


def ledger_path(directory: str, evaluation: str) -> str:
    """`results/<evaluation>.json` for the default `ledger.dir`, relative to the project root."""
    return posixpath.join(directory.strip("/") or ".", f"{evaluation}.json")


def commit_message(entries: Sequence[LedgerEntry], skip_ci: bool = False) -> str:
    """The structured message of a commit recording `entries` (see the module docstring);
    `skip_ci` adds a `[skip ci]` paragraph, so CI systems do not run again on the ledger push."""
    if not entries:
        raise ValueError("a ledger commit records at least one entry")
    ordered = sorted(entries, key=lambda e: e.evaluation)
    if len(ordered) == 1:
        one = ordered[0]
        subject = (
            f"{SUBJECT_PREFIX} {one.evaluation} {one.verdict} {one.fingerprint[:FINGERPRINT_CHARS]}"
        )
    else:
        subject = f"{SUBJECT_PREFIX} {len(ordered)} results"
    trailers: list[str] = []
    for entry in ordered:
        trailers.append(f"{TRAILER_EVALUATION}: {entry.evaluation}")
        trailers.append(f"{TRAILER_FINGERPRINT}: {entry.fingerprint}")
        trailers.append(f"{TRAILER_VERDICT}: {entry.verdict}")
        if entry.publication.result:
            trailers.append(f"{TRAILER_RESULT}: {entry.publication.result}")
        if entry.spec_commit:
            trailers.append(f"{TRAILER_SPEC_COMMIT}: {entry.spec_commit}")
    body = "\n\n[skip ci]" if skip_ci else ""
    return subject + body + "\n\n" + "\n".join(trailers) + "\n"


def parse_trailers(text: str) -> list[dict[str, str]]:
    """The per-evaluation trailer groups of a ledger commit message (or of the output of
    `git interpret-trailers --parse`): a new group starts at each Evalhub-Evaluation."""
    groups: list[dict[str, str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep or not key.startswith("Evalhub-"):
            continue
        if key == TRAILER_EVALUATION:
            groups.append({})
        if groups:
            groups[-1][key] = value.strip()
    return groups


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
