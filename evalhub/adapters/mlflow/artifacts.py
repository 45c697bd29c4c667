"""Artifact locations relative to a SQLite store, so a store never records a machine's path.

MLflow turns every local artifact location into an absolute path when it creates an
experiment (`resolve_uri_if_local`, against the working directory), and every run's artifact
URI inherits it: a copied project would go on writing into the original directory, and the
path of the machine that ran apply would sit in the store. So experiments of a SQLite store are
created at `evalhub-store:artifacts/<experiment>`, a location MLflow keeps as written, and this
repository resolves it against the directory of the SQLite file it is used with (MLflow hands
every artifact repository the tracking URI). The embedded default store `.evalhub/mlflow.db`
keeps its artifacts in `.evalhub/artifacts/`, as before.

Registered in-process by `boundary.import_mlflow`, and as the `mlflow.artifact_repository`
entry point, so `mlflow ui` over the same store (with evalhub installed) finds them too.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from .boundary import scheme, sqlite_path
from .values import STORE_SCHEME as SCHEME

SERVER_BACKEND = "_MLFLOW_SERVER_FILE_STORE"  # mlflow.server.constants.BACKEND_STORE_URI_ENV_VAR


def resolve(artifact_uri: str, tracking_uri: str | None) -> Path:
    """The local directory an `evalhub-store:` location names for the store at `tracking_uri`."""
    relative = PurePosixPath(artifact_uri.partition(":")[2])
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{artifact_uri!r} is not a location inside the store's directory")
    # MLflow's client passes the tracking URI; `mlflow server`/`mlflow ui` does not, but keeps
    # its backend store's URI in the environment.
    uri = (
        tracking_uri
        or os.environ.get(SERVER_BACKEND, "")
        or os.environ.get("MLFLOW_TRACKING_URI", "")
    )
    database = sqlite_path(uri) if scheme(uri) == "sqlite" else None
    if database is None:
        raise ValueError(
            f"{artifact_uri!r} is relative to a SQLite tracking store; open it with one "
            f"(the tracking URI is {uri or 'not set'})"
        )
    return database.parent.joinpath(*relative.parts)


def repository(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Any:  # MLflow evaluates the hints: no name only imported lazily
    """The artifact repository for an `evalhub-store:` location: MLflow's local one, rooted
    beside the SQLite file of the tracking store. (A factory, not a subclass: MLflow loads its
    entry points while it is being imported, so this module must not import MLflow itself.)"""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    local = resolve(artifact_uri, tracking_uri).as_uri()
    return LocalArtifactRepository(local, tracking_uri=tracking_uri, registry_uri=registry_uri)


def register() -> None:
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry as registry,
    )

    registry.register(SCHEME, repository)  # type: ignore[no-untyped-call]
