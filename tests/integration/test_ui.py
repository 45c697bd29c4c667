"""`evalhub ui` serves the MLflow UI (the real `mlflow server`) over the project's embedded
store: the runs apply recorded and their artifacts are there; Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.live import free_port
from tests.project import answer, make_project, recorded_units

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def call(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def test_ui_serves_the_projects_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", "sk-ui-" + "u" * 24)
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path, url)
        assert run_cli("apply", "--yes", cwd=root, timeout=300).code == 0
    fingerprint = recorded_units(root)["quality/returns-qa"].tags["evalhub.fingerprint"]
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalhub.cli.main", "ui", "--port", str(port)],
            cwd=root,
            stdout=sink,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        experiments = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                experiments = call(f"{base}/api/2.0/mlflow/experiments/search?max_results=50")
                break
            except OSError:
                time.sleep(0.5)
        assert experiments is not None, "the UI did not answer within 90 s"
        ids = [e["experiment_id"] for e in experiments["experiments"]]
        runs = call(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": ids})["runs"]
        (unit,) = [
            r
            for r in runs
            if {"key": "evalhub.fingerprint", "value": fingerprint} in r["data"]["tags"]
        ]
        # the artifacts of the embedded store (evalhub-store: locations) are found
        listed = call(f"{base}/api/2.0/mlflow/artifacts/list?run_id={unit['info']['run_id']}")
        assert "result.json" in {f["path"] for f in listed["files"]}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            raise
    assert code == 0
    assert f"MLflow UI on sqlite:///.evalhub/mlflow.db: {base}" in log.read_text()
