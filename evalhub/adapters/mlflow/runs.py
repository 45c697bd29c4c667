"""From MLflow runs to RecordedRuns, and the rules both readers share.

A reader hands over each run as a RawRun (MLflow's status, start time, evalhub.* tags, latest
metrics); `recorded` turns it into a RecordedRun or rejects it. Runs without evalhub's tags are
other tools' runs; runs with malformed evalhub tags are skipped rather than trusted: the worst a
skipped run costs is a re-run.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from evalhub.core import records
from evalhub.core.state import RecordedRun, RunKind, RunStatus, State

STATUSES: dict[str, RunStatus] = {
    "FINISHED": "succeeded",
    "FAILED": "failed",
    "KILLED": "failed",
    "RUNNING": "running",
    "SCHEDULED": "running",
}
KINDS: tuple[RunKind, ...] = ("unit", "evaluation")


@dataclass(frozen=True)
class RawRun:
    run_id: str
    status: str  # MLflow's: FINISHED, FAILED, KILLED, RUNNING, SCHEDULED
    start_time: int | None
    tags: Mapping[str, str]  # the evalhub.* tags only (readers filter: it is their query)
    metrics: Mapping[str, float]


def evalhub_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith(records.TAG_PREFIX)}


def recorded(raw: RawRun) -> RecordedRun | None:
    """The RecordedRun, or None for a run that is not evalhub's or whose tags are malformed."""
    tags = raw.tags
    kind = tags.get(records.KIND)
    name = tags.get(records.NAME)
    evaluation = tags.get(records.EVALUATION)
    fingerprint = tags.get(records.FINGERPRINT)
    status = STATUSES.get(raw.status)
    if kind not in KINDS or not name or not evaluation or not fingerprint or status is None:
        return None
    try:
        version = int(tags.get(records.FINGERPRINT_VERSION, ""))
        identity = _identity(tags.get(records.IDENTITY))
    except ValueError:
        return None
    return RecordedRun(
        run_id=raw.run_id,
        kind=kind,
        name=name,
        evaluation=evaluation,
        fingerprint=fingerprint,
        fingerprint_version=version,
        status=status,
        started=raw.start_time or 0,
        head=tags.get(records.HEAD) == "true",
        identity=identity,
        metrics=raw.metrics,
        tags=raw.tags,
    )


def _identity(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)  # JSONDecodeError is a ValueError
    if not isinstance(value, dict):
        raise ValueError("identity is not a JSON object")
    return value


def recorded_runs(raws: Iterable[RawRun]) -> list[RecordedRun]:
    return [run for run in map(recorded, raws) if run is not None]


def pending(fingerprints: Collection[str], heads: Iterable[RecordedRun]) -> list[str]:
    """The fingerprints a reader must still look up after reading the heads.

    A unit fingerprint whose head run succeeded is settled: the planner reuses that result
    whatever other runs share the fingerprint, so neither reader looks further. Every other
    fingerprint (new, or whose head failed or never finished) is looked up in full, which is
    where interrupted runs and older successes are found. Both readers apply this same rule,
    so they return equal States for the same data.
    """
    settled = {r.fingerprint for r in heads if r.kind == "unit" and r.status == "succeeded"}
    return sorted(set(fingerprints) - settled)


def make_state(heads: Iterable[RecordedRun], runs: Iterable[RecordedRun]) -> State:
    """A State in a canonical order (so two readers' States compare equal)."""
    unique_heads = {r.run_id: r for r in heads if r.head}
    unique_runs = {r.run_id: r for r in runs if r.kind == "unit"}
    return State(
        heads=tuple(
            sorted(unique_heads.values(), key=lambda r: (r.kind, r.name, r.started, r.run_id))
        ),
        by_fingerprint=tuple(
            sorted(unique_runs.values(), key=lambda r: (r.fingerprint, r.started, r.run_id))
        ),
    )
