"""A plan saved with `evalhub plan --out`, and the rule that refuses it once it is stale."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from evalhub.core.plan import Plan

SAVED_PLAN_KIND = "evalhub-plan"


class SavedPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(default=SAVED_PLAN_KIND, pattern=f"^{SAVED_PLAN_KIND}$")
    store: str = Field(description="The state store the plan was computed against.")
    selection: list[str] | None = Field(description="--evaluation names, or null for all.")
    plan: Plan


def staleness(saved: SavedPlan, current: Plan, store: str) -> list[str]:
    """Why a saved plan may no longer be applied (empty: it is current)."""
    problems = []
    if saved.store != store:
        problems.append(f"it was made against {saved.store}, not {store}")
    if saved.plan.fingerprint_version != current.fingerprint_version:
        problems.append(
            f"it was made with fingerprint version {saved.plan.fingerprint_version}; "
            f"this evalhub computes version {current.fingerprint_version}"
        )
    if saved.plan.state_token != current.state_token:
        problems.append("the recorded runs changed since it was made (another apply ran?)")
    before, now = saved.plan.evaluation_fingerprints(), current.evaluation_fingerprints()
    changed = sorted(n for n in before.keys() | now.keys() if before.get(n) != now.get(n))
    if changed:
        problems.append("the specs changed since it was made: " + ", ".join(changed))
    return problems
