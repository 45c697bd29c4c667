"""`evalhub ui`: the MLflow UI on the project's store (the embedded SQLite store, or a tracking
server the project names, which has its own UI)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from evalhub.app import compose
from evalhub.app.project import Project
from evalhub.app.state import tracking_uri


@dataclass(frozen=True)
class UiStart:
    uri: str  # the store, as configured
    url: str | None  # where the UI listens; None: the store is a server with its own UI


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ui(project: Project, host: str, port: int | None, ready: Callable[[UiStart], None]) -> int:
    uri = tracking_uri(project)
    if uri.connect.startswith(("http://", "https://", "databricks")):
        ready(UiStart(uri.shown, None))  # a tracking server serves its own UI
        return 0
    compose.check_mlflow_ui()
    port = port or free_port(host)
    ready(UiStart(uri.shown, f"http://{host}:{port}"))
    return compose.mlflow_ui(uri.connect, host, port, project.root)
