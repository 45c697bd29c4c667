"""`evalhub plan --render kubernetes DIR`: the manifests the Kubernetes executor would create
for every unit the plan would run (whatever executor its evaluation names), for review in a PR."""

from __future__ import annotations

import time
from pathlib import Path

from evalhub.app import compose
from evalhub.app.jobs import job_spec
from evalhub.app.plan import ProjectPlan
from evalhub.app.project import Project

RUNS_UNITS = ("create", "run", "retry")


def render_kubernetes(project: Project, current: ProjectPlan, directory: Path) -> list[Path]:
    """One YAML file per unit to run (Job + ConfigMap), named after the Job; the paths."""
    actions = {a.evaluation: a for a in current.plan.actions if a.action in RUNS_UNITS}
    stamp = time.strftime("%Y%m%dT%H%M%S")
    written: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    for evaluation in current.evaluations:
        action = actions.get(evaluation.name)
        if action is None:
            continue
        for work in action.units:
            if work.status == "shared":
                continue
            unit = next(u for u in evaluation.units if u.key == work.key)
            job = job_spec(project, evaluation, unit, work, None, stamp)
            text = compose.kubernetes_manifests(project, job, evaluation.execution)
            path = directory / f"evalhub-{work.fingerprint[:16]}.yaml"
            compose.write_atomic(path, text.encode())
            written.append(path)
    return written
