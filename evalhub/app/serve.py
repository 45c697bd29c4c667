"""`evalhub serve`: the control plane (app/control_plane.py) over HTTP, with EvalHub's API.

Loopback by default; any other address needs the write token (serve.write_token_env in
evalhub.yaml names its variable), so nobody who merely reaches the port can run jobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from evalhub.app import compose
from evalhub.app.control_plane import ControlPlane, Seams
from evalhub.app.project import Project
from evalhub.core.errors import ConfigError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080


def tokens(
    project: Project, host: str, env: dict[str, str] | None = None
) -> tuple[str | None, str | None]:
    """The read and write tokens from the variables evalhub.yaml names; a non-loopback bind
    without a write token (or with a named variable unset) is a ConfigError."""
    env = dict(os.environ) if env is None else env
    settings = project.config.serve
    found: list[str | None] = []
    for field, name in (
        ("serve.read_token_env", settings.read_token_env),
        ("serve.write_token_env", settings.write_token_env),
    ):
        value = env.get(name, "") if name else ""
        if name and not value:
            raise ConfigError(
                f"{field} names {name}, which is not set (or empty)",
                f"export {name} with the token, or remove {field} from evalhub.yaml",
            )
        found.append(value or None)
    read, write = found
    if host not in LOOPBACK and write is None:
        raise ConfigError(
            f"refusing to serve on {host} without tokens: anyone who reaches it could run jobs",
            "set serve.write_token_env (and serve.read_token_env) in evalhub.yaml to the names "
            "of variables holding tokens, or bind 127.0.0.1",
        )
    return read, write


def build(project: Project, host: str, seams: Seams | None = None) -> tuple[ControlPlane, object]:
    """The control plane and its ASGI app (the worker not started yet)."""
    read, write = tokens(project, host)
    plane = ControlPlane(project, seams)
    app = compose.control_plane_app(plane, read, write, project.config.serve.max_request_bytes)
    return plane, app


def serve(project: Project, options: ServeOptions, ready: Callable[[], None]) -> None:
    """Serve until interrupted; the job running then is failed at the next start. `ready` is
    called once the settings are checked and the jobs are ours."""
    plane, app = build(project, options.host)
    ready()
    plane.start()
    try:
        compose.serve_http(app, options.host, options.port)
    finally:
        plane.stop(timeout=0)
