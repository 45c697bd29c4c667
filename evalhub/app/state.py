"""Opening the state store a project records into."""

from __future__ import annotations

import os

from evalhub.app.project import Project
from evalhub.ports import StateStore


def tracking_uri(project: Project) -> str:
    """The tracking URI: MLFLOW_TRACKING_URI when set and not empty (MLflow's own convention,
    how CI points at a shared server), else evalhub.yaml's `tracking_uri`, else the embedded
    default: SQLite under .evalhub/."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip() or project.config.tracking_uri
    if configured:
        return configured
    return f"sqlite:///{(project.state_dir / 'mlflow.db').as_posix()}"


def open_state_store(project: Project) -> StateStore:
    from evalhub.app.compose import mlflow_state_store

    return mlflow_state_store(tracking_uri(project), project.state_dir / "artifacts")
