"""Opening the state store a project records into."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from evalhub.app.project import Project
from evalhub.core.project import STATE_DIR
from evalhub.ports import StateStore

EMBEDDED_DB = "mlflow.db"


@dataclass(frozen=True)
class TrackingUri:
    """`shown` is what messages, saved plans, the ledger and signatures name: the URI as
    configured, relative to the project for the embedded default, so no record carries a
    path of the machine that ran apply. `connect` is what this machine opens."""

    shown: str
    connect: str
    embedded: bool


def tracking_uri(project: Project) -> TrackingUri:
    """The tracking URI: MLFLOW_TRACKING_URI when set and not empty (MLflow's own convention,
    how CI points at a shared server), else evalhub.yaml's `tracking_uri`, else the embedded
    default: SQLite under .evalhub/."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip() or project.config.tracking_uri
    if configured:
        return TrackingUri(configured, configured, embedded=False)
    absolute = (project.state_dir / EMBEDDED_DB).as_posix()
    return TrackingUri(f"sqlite:///{STATE_DIR}/{EMBEDDED_DB}", f"sqlite:///{absolute}", True)


@dataclass(frozen=True)
class Indexed:
    uri: str
    indexed: int


def index_store(project: Project, progress: Callable[[int, int], None]) -> Indexed:
    """`evalhub store index`: make the store's older runs findable in bulk."""
    store = open_state_store(project)
    return Indexed(store.uri, store.index_runs(progress))


def open_state_store(project: Project) -> StateStore:
    from evalhub.app.compose import mlflow_state_store

    uri = tracking_uri(project)
    return mlflow_state_store(
        uri.connect,
        project.state_dir / "artifacts",
        shown=uri.shown,
        create_directory=uri.embedded,
    )
