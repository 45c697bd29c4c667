"""What evalhub writes to the state store: run kinds, the tags it sets, and run outcomes.

Tags (all prefixed `evalhub.`) are the contract between the writer (the recorder) and the
readers (plan, apply's scoring, gate); other tools' runs in the same experiments lack them and
are ignored. Every tag name evalhub writes or reads is a constant here: nowhere else spells one.

A unit run also carries the digest of its result (RESULT_DIGEST), taken when it finished;
a recorded result whose metrics or status no longer match it was altered in the store and is
not used (see `altered`).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evalhub.core.canonical import canonical_json, sha256_hex
from evalhub.core.state import RecordedRun, RunKind, RunStatus

TAG_PREFIX = "evalhub."
KIND = "evalhub.kind"  # "unit" | "evaluation"
NAME = "evalhub.name"  # unit key "<evaluation>/<entry>" or the evaluation's name
EVALUATION = "evalhub.evaluation"  # the evaluation a run belongs to
FINGERPRINT = "evalhub.fingerprint"
FINGERPRINT_VERSION = "evalhub.fingerprint_version"
IDENTITY = "evalhub.identity"  # canonical JSON of the identity document (to explain changes)
HEAD = "evalhub.head"  # "true" on the latest run of each name, "false" once superseded
STATUS = "evalhub.status"  # "succeeded" | "failed" (the MLflow status says running/killed)
GIT_COMMIT = "evalhub.git_commit"
VERSION = "evalhub.version"
MODEL = "evalhub.model"
COLLECTION = "evalhub.collection"
ERROR = "evalhub.error"  # why a run failed, one line
# unit runs
PROVIDER = "evalhub.provider"
BENCHMARK = "evalhub.benchmark"
FRAMEWORK_VERSION = "evalhub.framework_version"
RESULT_DIGEST = "evalhub.result_digest"  # sha256 of the unit's result as recorded (`result_digest`)
# On a unit run: "unit-input", when the run also carries its unit input (a run input named
# UNIT_INPUT whose digest is the fingerprint's first 32 hex digits), which is how a tracking
# server finds the runs of many fingerprints in one search (adapters/mlflow/search_reader.py).
LOOKUP = "evalhub.lookup"
LOOKUP_UNIT_INPUT = "unit-input"
UNIT_INPUT = "evalhub.unit"
ENVIRONMENT_LOCK = "evalhub.environment.lock"  # sha256 of the managed environment's lock
# evaluation runs
ACTION = "evalhub.action"  # the plan's action that made the run
VERDICT = "evalhub.verdict"
BASELINE = "evalhub.baseline"  # aggregate of the last passing result, carried on every run
OCI_REFERENCE = "evalhub.oci.reference"  # <target>:<tag> of the published result
PUBLISHED_DIGEST = "evalhub.oci.digest"  # the result artifact's digest, once published
ATTESTATION_DIGEST = "evalhub.attestation.digest"
SIGNER = "evalhub.signer"  # the signing key's id

UNIT_RUN_PREFIX = "evalhub.unit_run."  # evaluation: + entry key -> the unit run it scored
# MLflow's own tags, so its UI answers "which code, who" without evalhub.
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_GIT_REPO = "mlflow.source.git.repoURL"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MLFLOW_USER = "mlflow.user"
MLFLOW_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI

TAG_VALUE_LIMIT = 8000  # MLflow's limit on a tag value
KEY_LIMIT = 250  # MLflow's limit on a metric, param or tag key


_NOT_IN_KEYS = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_key(name: str) -> str:
    """A framework's metric name as recorded. MLflow accepts letters, digits, `_ - . : /` and
    spaces in keys: lm-eval's `<metric>,<filter>` (exact_match,strip) is recorded as
    exact_match/strip, and any other character (lighteval's `pass@k:k=1&n=1`) becomes `_`.
    A key that would not stay the same as a path (`a//b`, `/a`, `a/./b`) loses its slashes
    and a leading `..` gets a `_`, as the store would do itself: the recorded key is this one,
    so the result digest taken over these keys holds for what the store reads back."""
    key = _NOT_IN_KEYS.sub("_", name.replace(",", "/"))
    if posixpath.normpath(key) != key or key.startswith("/"):
        key = key.replace("/", "_")
    return "_" + key if key.startswith("..") else key


def recordable(key: str) -> bool:
    """Whether the store keeps a metric under `key` (a metric_key): it drops empty and
    over-long keys, so the recorder leaves them out too, and the digest covers what is kept."""
    return key not in {"", "."} and len(key) <= KEY_LIMIT


TAGS = {
    KIND: "unit | evaluation",
    NAME: "unit key <evaluation>/<entry>, or the evaluation name",
    EVALUATION: "the evaluation the run belongs to",
    FINGERPRINT: "sha256 hex of the identity document",
    FINGERPRINT_VERSION: "version of the fingerprint computation",
    IDENTITY: "the identity document as canonical JSON (omitted when over 8000 characters)",
    HEAD: "true on the latest run of each name",
    STATUS: "succeeded | failed",
    GIT_COMMIT: "the spec repository's commit",
    VERSION: "the evalhub version that wrote the run",
    MODEL: "the model's name",
    COLLECTION: "collection name@version",
    ERROR: "why the run failed",
    PROVIDER: "unit: the Provider's name",
    BENCHMARK: "unit: the benchmark id",
    FRAMEWORK_VERSION: "unit: the framework version that produced the result",
    RESULT_DIGEST: "unit: sha256 of canonical JSON {status, metrics} as recorded",
    ENVIRONMENT_LOCK: "unit: sha256 of the managed environment's lock (name==version of each "
    "installed distribution; the list is in environment.json)",
    ACTION: "evaluation: create | run | retry | rescore | publish",
    VERDICT: "evaluation: pass | fail",
    BASELINE: "evaluation: aggregate of the last passing result",
    OCI_REFERENCE: "evaluation: where the signed result was published (<target>:<tag>)",
    PUBLISHED_DIGEST: "evaluation: the published result artifact's digest",
    ATTESTATION_DIGEST: "evaluation: the digest of the result's signed attestation",
    SIGNER: "evaluation: the id of the key that signed the attestation",
    UNIT_RUN_PREFIX + "<entry>": "evaluation: the unit run whose result it scored (new or reused)",
}
# MLflow's own tags evalhub sets as well (written only; evalhub never reads them).
MLFLOW_TAGS = {
    MLFLOW_GIT_COMMIT: "MLflow's: the spec repository's commit",
    MLFLOW_GIT_REPO: "MLflow's: the spec repository's remote, when it has one",
    MLFLOW_SOURCE_NAME: "MLflow's: the spec file that defines the evaluation",
    MLFLOW_SOURCE_TYPE: "MLflow's: PROJECT",
    MLFLOW_USER: "MLflow's: who ran evalhub apply",
    MLFLOW_NOTE: "MLflow's description: evaluation runs list the unit runs they scored",
}


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a unit read, as MLflow's `log_input` records it."""

    name: str
    digest: str  # short, as MLflow shows digests
    source: str  # JSON: {"uri": repository-relative path, "sha256": full digest}


@dataclass(frozen=True)
class NewRun:
    kind: RunKind
    name: str
    evaluation: str
    fingerprint: str
    fingerprint_version: int
    identity: Mapping[str, Any]
    experiment: str
    parent_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # more tags (model, commit, user's)
    inputs: tuple[DatasetRef, ...] = ()  # datasets the run reads (MLflow's run inputs)

    def all_tags(self) -> dict[str, str]:
        identity = canonical_json(dict(self.identity))
        tags = {
            **self.tags,
            KIND: self.kind,
            NAME: self.name,
            EVALUATION: self.evaluation,
            FINGERPRINT: self.fingerprint,
            FINGERPRINT_VERSION: str(self.fingerprint_version),
            HEAD: "false",
        }
        if len(identity) <= TAG_VALUE_LIMIT:
            tags[IDENTITY] = identity
        return tags


@dataclass(frozen=True)
class RunOutcome:
    status: RunStatus  # "succeeded" or "failed"
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, bytes] = field(default_factory=dict)  # file name -> content
    error: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


# -- the digest of a unit's recorded result ----------------------------------------------------

# Stores keep what they can: MLflow records an infinity as the largest finite float (and NaN
# as NaN). Such values are digested as one token either way, so what the store reads back
# digests as what was written.
_LARGEST = 1.7976931348623157e308


def _digestible(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value) or abs(value) >= _LARGEST:
        return "inf" if value > 0 else "-inf"
    return value


def result_digest(status: str, metrics: Mapping[str, float]) -> str:
    """sha256 hex of canonical JSON {status, metrics}: what scoring reads of a unit's run
    (the metrics include its normalised score). Taken when the unit finishes, recorded as
    RESULT_DIGEST, and compared before the result is used."""
    values = {key: _digestible(float(value)) for key, value in metrics.items()}
    return sha256_hex({"status": status, "metrics": values})


def altered(run: RecordedRun) -> bool:
    """Whether `run`'s metrics or status changed in the store since it finished. A run
    recorded without a digest (by an older evalhub, or still running) cannot tell: it counts
    as unaltered, as every run did before the digest was recorded."""
    recorded = run.tags.get(RESULT_DIGEST)
    if recorded is None or run.status == "running":
        return False
    return recorded != result_digest(run.status, run.metrics)


def usable(runs: Iterable[RecordedRun]) -> RecordedRun | None:
    """The unit result to use among a fingerprint's runs (newest first): the newest that
    succeeded and was not altered in the store."""
    return next((r for r in runs if r.status == "succeeded" and not altered(r)), None)
