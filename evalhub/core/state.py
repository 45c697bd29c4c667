"""What the state store holds, as plain data the planner reads.

The MLflow adapter turns runs into RecordedRuns; the planner never sees MLflow. `head` marks the
latest recorded run of each unit key and of each evaluation: the store keeps exactly one head
per name (and when a crash leaves two, the newer one wins here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from evalhub.core.canonical import sha256_hex

RunKind = Literal["unit", "evaluation"]
RunStatus = Literal["succeeded", "failed", "running"]


@dataclass(frozen=True)
class RecordedRun:
    run_id: str
    kind: RunKind
    name: str  # unit key "<evaluation>/<entry>" or the evaluation's name
    evaluation: str
    fingerprint: str
    fingerprint_version: int
    status: RunStatus
    started: int  # ms since the epoch, for ordering
    head: bool = False
    identity: Mapping[str, Any] | None = None  # the identity document, to explain changes
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def newest(runs: Iterable[RecordedRun]) -> RecordedRun | None:
    return max(runs, key=lambda r: (r.started, r.run_id), default=None)


@dataclass(frozen=True)
class State:
    """The recorded runs a plan was computed against."""

    heads: tuple[RecordedRun, ...] = ()  # latest run per unit key and per evaluation
    by_fingerprint: tuple[RecordedRun, ...] = ()  # every run of the fingerprints asked for

    def token(self) -> str:
        """Changes whenever a run the plan depends on is added or changes status."""
        seen = sorted({(r.run_id, r.status, r.head) for r in (*self.heads, *self.by_fingerprint)})
        return sha256_hex([list(item) for item in seen])

    def unit_heads(self) -> dict[str, RecordedRun]:
        return _latest(r for r in self.heads if r.kind == "unit")

    def evaluation_heads(self) -> dict[str, RecordedRun]:
        return _latest(r for r in self.heads if r.kind == "evaluation")

    def unit_runs(self) -> dict[str, list[RecordedRun]]:
        """Fingerprint -> every recorded unit run with it, newest first."""
        runs: dict[str, dict[str, RecordedRun]] = {}
        for run in (*self.heads, *self.by_fingerprint):
            if run.kind == "unit":
                runs.setdefault(run.fingerprint, {})[run.run_id] = run
        return {
            fp: sorted(found.values(), key=lambda r: (r.started, r.run_id), reverse=True)
            for fp, found in runs.items()
        }


def _latest(runs: Iterable[RecordedRun]) -> dict[str, RecordedRun]:
    out: dict[str, RecordedRun] = {}
    for run in runs:
        current = out.get(run.name)
        if current is None or (run.started, run.run_id) > (current.started, current.run_id):
            out[run.name] = run
    return out
