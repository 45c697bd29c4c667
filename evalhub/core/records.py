"""What evalhub writes to the state store: run kinds, the tags it sets, and run outcomes.

Tags (all prefixed `evalhub.`) are the contract between the writer (apply) and the reader
(plan); other tools' runs in the same experiments lack them and are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalhub.core.canonical import canonical_json
from evalhub.core.state import RunKind, RunStatus

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

TAG_VALUE_LIMIT = 8000  # MLflow's limit on a tag value


_NOT_IN_KEYS = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_key(name: str) -> str:
    """A framework's metric name as recorded. MLflow accepts letters, digits, `_ - . : /` and
    spaces in keys: lm-eval's `<metric>,<filter>` (exact_match,strip) is recorded as
    exact_match/strip, and any other character (lighteval's `pass@k:k=1&n=1`) becomes `_`."""
    return _NOT_IN_KEYS.sub("_", name.replace(",", "/"))


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
}


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
