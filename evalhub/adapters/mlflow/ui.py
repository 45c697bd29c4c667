"""The MLflow UI over a project's store: `mlflow server` from the full `mlflow` distribution
(the `ui` extra), on 127.0.0.1, in the foreground until Ctrl-C."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from importlib import metadata

from evalhub.core.errors import ConfigError

UI_EXTRA_HINT = (
    "the MLflow UI comes with the full MLflow: `pip install 'evalhub-gitops[ui]'` "
    "(or `pip install mlflow==3.17.2` beside evalhub)"
)


def check_ui_installed() -> None:
    """The full `mlflow` distribution (mlflow-skinny alone has no server) and its server."""
    try:
        metadata.distribution("mlflow")
        server = importlib.util.find_spec("flask") is not None
    except (metadata.PackageNotFoundError, ImportError, ValueError):
        server = False
    if not server:
        raise ConfigError("the MLflow UI is not installed", UI_EXTRA_HINT)


def ui_command(backend_uri: str, host: str, port: int) -> list[str]:
    # MLflow's own console script, next to this Python; its `server` with one worker starts in
    # seconds and serves the UI (the `ui` command is the same server with other defaults).
    found = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    return [
        found,
        "server",
        "--backend-store-uri",
        backend_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def run_ui(backend_uri: str, host: str, port: int, cwd: str) -> int:
    """Serve until interrupted; returns MLflow's exit code (0 when stopped by Ctrl-C)."""
    check_ui_installed()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(ui_command(backend_uri, host, port), cwd=cwd, env=env,
                            start_new_session=True)  # fmt: skip
    try:
        return proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 0
