"""Plan: what must happen for the recorded state to match the specs. Pure and plain data.

For each evaluation one action:
  create   never recorded
  run      some units have no successful recorded result (each says why; a result altered in
           the store since it was recorded does not count)
  retry    the only units left are ones whose last attempt failed or was interrupted
  rescore  every unit is recorded, but aggregation or gates changed: no model calls
  publish  the recorded result matches the specs but was never published and signed (the
           registry was down, say): publishing needs no model call
  noop     the recorded result matches the specs
  orphan   recorded, but no longer in the specs (not a job submitted to `evalhub serve`)
A unit shared by several evaluations runs once: later evaluations list it as `shared`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evalhub.core.canonical import normalise, sha256_hex
from evalhub.core.fingerprint import (
    FINGERPRINT_VERSION,
    Fingerprints,
    evaluation_identity,
    unit_identity,
)
from evalhub.core.records import PUBLISHED_DIGEST, altered, usable
from evalhub.core.resolved import ResolvedEvaluation, ResolvedUnit
from evalhub.core.state import RecordedRun, State

PLAN_FORMAT_VERSION = 1
# Evaluations made from jobs submitted to `evalhub serve` are named so; no spec defines them,
# and they are not orphans of the specs.
JOB_PREFIX = "api-job-"
MAX_REASONS = 8

ActionKind = Literal["create", "run", "retry", "rescore", "publish", "noop", "orphan"]
ACTIONS: tuple[ActionKind, ...] = ("create", "run", "retry", "rescore", "publish", "noop", "orphan")
UnitStatus = Literal["run", "retry", "shared"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitWork(_Frozen):
    """A unit that must run, and why."""

    key: str = Field(description="The entry's name within the evaluation.")
    unit: str = Field(description="<evaluation>/<entry>: the unit's name in records.")
    fingerprint: str
    provider: str
    benchmark: str
    status: UnitStatus = Field(
        description="run; retry (last attempt failed or was interrupted); shared (another "
        "evaluation of this plan runs the same unit)."
    )
    reasons: list[str]


class EvaluationAction(_Frozen):
    evaluation: str
    action: ActionKind
    fingerprint: str | None = Field(description="The evaluation's fingerprint from the specs.")
    recorded_fingerprint: str | None = Field(description="The fingerprint last recorded.")
    units: list[UnitWork] = Field(description="Units to run; empty for rescore and noop.")
    reused: int = Field(description="Units whose recorded result is reused.")
    reasons: list[str] = Field(description="Why the action is needed.")


class Summary(_Frozen):
    create: int = 0
    run: int = 0
    retry: int = 0
    rescore: int = 0
    publish: int = 0
    noop: int = 0
    orphan: int = 0
    units: int = Field(default=0, description="Distinct units to execute.")


class Plan(_Frozen):
    format_version: int = PLAN_FORMAT_VERSION
    fingerprint_version: int = FINGERPRINT_VERSION
    state_token: str = Field(description="Digest of the recorded runs the plan was made against.")
    actions: list[EvaluationAction]
    summary: Summary

    @property
    def has_changes(self) -> bool:
        return any(a.action != "noop" for a in self.actions)

    def evaluation_fingerprints(self) -> dict[str, str | None]:
        return {a.evaluation: a.fingerprint for a in self.actions}


def make_plan(
    evaluations: Iterable[ResolvedEvaluation],
    state: State,
    *,
    orphans: bool = True,
    fingerprints: Fingerprints | None = None,
    publishing: bool = False,
    lost: Collection[str] = (),
) -> Plan:
    """Diff the resolved evaluations against the recorded state. With `publishing` (a signing
    key is at hand), a recorded result that was never published is pending too, and so is one
    whose published digest is in `lost` (the target no longer holds it)."""
    fingerprints = fingerprints or Fingerprints()
    unit_heads = state.unit_heads()
    evaluation_heads = state.evaluation_heads()
    runs_by_fp = state.unit_runs()
    scheduled: dict[str, str] = {}  # fingerprint -> unit that runs it
    actions = []
    names = set()
    for evaluation in evaluations:
        names.add(evaluation.name)
        actions.append(
            _evaluation_action(
                evaluation,
                evaluation_heads.get(evaluation.name),
                unit_heads,
                runs_by_fp,
                scheduled,
                fingerprints,
                publishing,
                lost,
            )
        )
    if orphans:
        for name, head in sorted(evaluation_heads.items()):
            if name not in names and not name.startswith(JOB_PREFIX):
                actions.append(
                    EvaluationAction(
                        evaluation=name,
                        action="orphan",
                        fingerprint=None,
                        recorded_fingerprint=head.fingerprint,
                        units=[],
                        reused=0,
                        reasons=["recorded, but no evaluation of this name is in the specs"],
                    )
                )
    summary = Summary(
        **{kind: sum(a.action == kind for a in actions) for kind in ACTIONS},
        units=len(scheduled),
    )
    return Plan(state_token=state_token(state), actions=actions, summary=summary)


def state_token(state: State) -> str:
    """The state's token, changed too when a recorded result is altered in the store: a plan
    saved before the edit (which would have reused that result) is then refused as stale."""
    tampered = sorted({r.run_id for r in (*state.heads, *state.by_fingerprint) if altered(r)})
    return sha256_hex([state.token(), tampered]) if tampered else state.token()


def _evaluation_action(
    evaluation: ResolvedEvaluation,
    head: RecordedRun | None,
    unit_heads: Mapping[str, RecordedRun],
    runs_by_fp: Mapping[str, list[RecordedRun]],
    scheduled: dict[str, str],
    fingerprints: Fingerprints,
    publishing: bool,
    lost: Collection[str],
) -> EvaluationAction:
    fingerprint = fingerprints.evaluation(evaluation)
    recorded = head.fingerprint if head else None
    work: list[UnitWork] = []
    for unit in evaluation.units:
        fp = fingerprints.unit(unit)
        runs = runs_by_fp.get(fp, [])
        if usable(runs) is not None:
            continue
        name = f"{evaluation.name}/{unit.key}"
        status: UnitStatus
        tampered = [r for r in runs if altered(r)]
        if fp in scheduled:
            status, reasons = "shared", [f"the same unit runs once, as {scheduled[fp]}"]
        elif tampered:
            status, reasons = "run", [altered_reason(tampered[0])]
        elif runs:
            status, reasons = "retry", [_retry_reason(runs[0])]
        else:
            status = "run"
            reasons = _unit_reasons(unit, unit_heads.get(name), head is not None)
        scheduled.setdefault(fp, name)
        work.append(
            UnitWork(
                key=unit.key,
                unit=name,
                fingerprint=fp,
                provider=unit.provider.name,
                benchmark=unit.benchmark,
                status=status,
                reasons=reasons,
            )
        )
    reused = len(evaluation.units) - len(work)
    action: ActionKind
    if head is None:
        action = "create"
        reasons = ["never recorded"]
    elif work:
        pending = [w for w in work if w.status != "shared"]
        action = "retry" if pending and all(w.status == "retry" for w in pending) else "run"
        reasons = [f"{len(work)} of {len(evaluation.units)} units have no recorded result"]
    elif head.fingerprint == fingerprint and head.status == "succeeded":
        if publishing and PUBLISHED_DIGEST not in head.tags:
            action, reasons = "publish", ["recorded, but never published and signed"]
        elif publishing and head.tags[PUBLISHED_DIGEST] in lost:
            action = "publish"
            reasons = [
                f"published as {head.tags[PUBLISHED_DIGEST]}, which the target no longer holds"
            ]
        else:
            action, reasons = "noop", []
    else:
        action = "rescore"
        reasons = _rescore_reasons(evaluation, head, fingerprint)
    return EvaluationAction(
        evaluation=evaluation.name,
        action=action,
        fingerprint=fingerprint,
        recorded_fingerprint=recorded,
        units=work,
        reused=reused,
        reasons=reasons,
    )


def altered_reason(run: RecordedRun) -> str:
    return (
        f"recorded result altered in the store (run {run.run_id}: its metrics or status no "
        "longer match the digest recorded when it finished)"
    )


def _retry_reason(run: RecordedRun) -> str:
    if run.status == "running":
        return f"last attempt was interrupted (run {run.run_id} never finished)"
    return f"last attempt failed (run {run.run_id})"


def _unit_reasons(unit: ResolvedUnit, head: RecordedRun | None, recorded: bool) -> list[str]:
    if head is None:
        return ["new benchmark" if recorded else "never run"]
    if head.fingerprint_version != FINGERPRINT_VERSION:
        return [
            f"recorded with fingerprint version {head.fingerprint_version}; this evalhub "
            f"computes version {FINGERPRINT_VERSION}, so the results are not comparable"
        ]
    if head.identity is None:
        return ["its identity changed (the recorded run does not say how)"]
    changes = diff(head.identity, unit_identity(unit))
    return changes or [
        "its identity changed (the recorded identity does not match its fingerprint)"
    ]


def _rescore_reasons(
    evaluation: ResolvedEvaluation, head: RecordedRun, fingerprint: str
) -> list[str]:
    if head.fingerprint == fingerprint:
        return [f"last scoring did not finish (run {head.run_id} is {head.status})"]
    if head.fingerprint_version != FINGERPRINT_VERSION:
        return [f"recorded with fingerprint version {head.fingerprint_version}"]
    if head.identity is None:
        return ["aggregation or gates changed"]
    current = evaluation_identity(evaluation)
    changes = diff(head.identity.get("scoring", {}), current["scoring"], prefix="")
    units = diff(head.identity.get("units", {}), current["units"], prefix="units.")
    return (changes + [f"{u} (already recorded)" for u in units]) or [
        "aggregation or gates changed"
    ]


def diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable changes between two identity documents: `path: old → new`."""
    changes: list[str] = []
    _diff(old, new, prefix.rstrip("."), changes)
    if len(changes) > MAX_REASONS:
        changes = [
            *changes[: MAX_REASONS - 1],
            f"… and {len(changes) - MAX_REASONS + 1} more changes",
        ]
    return changes


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{child}: added {_show(new[key])}")
            elif key not in new:
                out.append(f"{child}: removed (was {_show(old[key])})")
            else:
                _diff(old[key], new[key], child, out)
    elif old != new:
        out.append(f"{path}: {_show(old)} → {_show(new)}")


def _show(value: Any) -> str:
    text = json.dumps(normalise(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
