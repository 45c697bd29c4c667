"""An evaluation result as published: what the OCI result artifact holds and what its signed
attestation states. Pure: every value (time, commit, MLflow ids, version) is passed in.

`ResultRecord` is the result layer (`result.json`); `EvaluationResult` adds the resolved
evaluation, which becomes the spec layer (`spec.json`). Both are versioned by RESULT_VERSION.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, JsonValue, field_validator

from evalhub.core.fingerprint import (
    FINGERPRINT_VERSION,
    evaluation_fingerprint,
    model_identity,
    unit_fingerprint,
)
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.scoring import EvaluationScore
from evalhub.core.spec.base import Strict

RESULT_VERSION = 1
TAG_FINGERPRINT_CHARS = 16

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


class BenchmarkResult(Strict):
    """One benchmark entry of the evaluation, scored."""

    key: str = Field(description="The entry's name within its evaluation.")
    unit_fingerprint: str = Field(description="The fingerprint of the unit that produced it.")
    metric: str = Field(description="The primary metric.")
    value: float | None = Field(description="The metric as the framework reported it.")
    score: float | None = Field(description="The value normalised to [0, 1].")
    weight: float = Field(description="Its weight in the aggregate (0: reported only).")
    threshold: float | None = Field(description="The minimum score, locked before the run.")
    passed: bool = Field(description="Whether the score met its threshold.")


class ResultGates(Strict):
    """The gates as the spec set them before the run (they are part of the fingerprint)."""

    min_score: float | None = Field(default=None, description="Minimum aggregate score.")
    max_regression: float | None = Field(
        default=None, description="Largest allowed drop of the aggregate below the baseline."
    )
    collection_threshold: float | None = Field(
        default=None, description="The collection's own minimum aggregate."
    )
    benchmarks: dict[str, float] = Field(
        default_factory=dict, description="Entry key -> minimum score set by the evaluation."
    )


class MlflowRuns(Strict):
    """Where the result is recorded. The tracking URI never carries credentials."""

    tracking_uri: str | None = Field(default=None, description="The tracking server or store.")
    run_id: str | None = Field(default=None, description="The evaluation's run.")
    unit_runs: dict[str, str | None] = Field(
        default_factory=dict, description="Entry key -> the unit run whose result was used."
    )


class ResultRecord(Strict):
    """The result layer of the artifact (`result.json`)."""

    result_version: Literal[1] = 1  # RESULT_VERSION
    evaluation: str
    fingerprint: str = Field(description="The evaluation fingerprint (sha256 hex).")
    fingerprint_version: int
    spec_commit: str | None = Field(default=None, description="The spec repository's commit.")
    source: str | None = Field(default=None, description="The spec repository (git remote).")
    model: str = Field(description="The model's name.")
    model_identity: dict[str, JsonValue]
    collection: str | None = Field(default=None, description="name@version, if any.")
    benchmarks: tuple[BenchmarkResult, ...]
    aggregate: float | None
    verdict: Literal["pass", "fail"]
    reasons: tuple[str, ...] = ()
    gates: ResultGates
    mlflow: MlflowRuns
    evalhub_version: str
    created: str = Field(description="When the result was scored (ISO 8601).")

    @field_validator("created")
    @classmethod
    def _iso8601(cls, value: str) -> str:
        datetime.fromisoformat(value)  # raises ValueError, which pydantic reports
        return value

    @property
    def tag(self) -> str:
        """The content-derived tag: `<evaluation>-<first 16 hex of the fingerprint>`."""
        return result_tag(self.evaluation, self.fingerprint)

    def scores(self) -> dict[str, float | None]:
        return {b.key: b.score for b in self.benchmarks}


class EvaluationResult(ResultRecord):
    """Everything published for one evaluation result: the record plus the resolved spec."""

    resolved: ResolvedEvaluation

    def record(self) -> ResultRecord:
        return ResultRecord.model_validate(self.model_dump(exclude={"resolved"}))

    @classmethod
    def build(
        cls,
        evaluation: ResolvedEvaluation,
        score: EvaluationScore,
        *,
        created: str,
        evalhub_version: str,
        spec_commit: str | None = None,
        source: str | None = None,
        tracking_uri: str | None = None,
        run_id: str | None = None,
        unit_runs: Mapping[str, str | None] | None = None,
    ) -> EvaluationResult:
        """The result of `evaluation` scored as `score`. `created` is ISO 8601 (e.g.
        `datetime.now(UTC).isoformat()`); `unit_runs` maps entry keys to MLflow run ids."""
        units = {u.key: u for u in evaluation.units}
        benchmarks = tuple(
            BenchmarkResult(
                key=b.key,
                unit_fingerprint=unit_fingerprint(units[b.key]),
                metric=b.metric,
                value=_finite(b.value),
                score=_finite(b.score),
                weight=b.weight,
                threshold=b.threshold,
                passed=b.passed,
            )
            for b in score.benchmarks
        )
        return cls(
            evaluation=evaluation.name,
            fingerprint=evaluation_fingerprint(evaluation),
            fingerprint_version=FINGERPRINT_VERSION,
            spec_commit=spec_commit,
            source=strip_credentials(source) if source else None,
            model=evaluation.model.name,
            model_identity=model_identity(evaluation.model),
            collection=evaluation.collection,
            benchmarks=benchmarks,
            aggregate=_finite(score.aggregate),
            verdict=score.verdict,
            reasons=score.reasons,
            gates=ResultGates(
                min_score=evaluation.gates.min_score,
                max_regression=evaluation.gates.max_regression,
                collection_threshold=evaluation.collection_threshold,
                benchmarks=dict(evaluation.gates.benchmarks),
            ),
            mlflow=MlflowRuns(
                tracking_uri=strip_credentials(tracking_uri) if tracking_uri else None,
                run_id=run_id,
                unit_runs=dict(unit_runs or {}),
            ),
            evalhub_version=evalhub_version,
            created=created,
            resolved=evaluation,
        )


def result_tag(evaluation: str, fingerprint: str) -> str:
    return f"{evaluation}-{fingerprint[:TAG_FINGERPRINT_CHARS]}"


def strip_credentials(uri: str) -> str:
    """`https://user:secret@host/x` -> `https://host/x`: a URI written into an artifact must
    not carry a password or token."""
    return _USERINFO.sub(lambda m: m.group("scheme"), uri, count=1)


def json_bytes(value: Any) -> bytes:
    """Deterministic, readable JSON for artifact layers: sorted keys, 2-space indent, LF."""
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
