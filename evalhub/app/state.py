"""Opening the state store a project records into."""

from __future__ import annotations

from evalhub.app.project import Project
from evalhub.ports import StateStore


def tracking_uri(project: Project) -> str:
    """The configured tracking URI, or the embedded default: SQLite under .evalhub/."""
    configured = project.config.tracking_uri
    if configured:
        return configured
    return f"sqlite:///{(project.state_dir / 'mlflow.db').as_posix()}"


def open_state_store(project: Project) -> StateStore:
    from evalhub.adapters.mlflow_store import MlflowStateStore

    return MlflowStateStore.open(tracking_uri(project), project.state_dir / "artifacts")
