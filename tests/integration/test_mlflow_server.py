"""The MLflow state store against a real `mlflow server` (HTTP), on a SQLite backend that the
SQL reader can read too: both readers must see the same State."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalhub.adapters.mlflow.search_reader import SearchReader
from evalhub.adapters.mlflow.sql_reader import SqlReader
from evalhub.adapters.mlflow_store import MlflowStateStore
from evalhub.core import records
from evalhub.core.errors import StateError
from tests.adapters.test_mlflow_store import FP_A, FP_B, client, new_run, record

pytestmark = pytest.mark.integration

READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Server:
    url: str
    db: Path
    artifacts: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlflow_executable() -> str:
    beside = Path(sys.executable).parent / "mlflow"
    found = str(beside) if beside.exists() else shutil.which("mlflow")
    if found is None:
        pytest.fail("the `mlflow` command is missing: pip install 'mlflow==3.17.2' (not skinny)")
    return found


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"mlflow server not ready after {READY_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers: the whole process group, TERM, then KILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mlflow-server")
    db, artifacts, log = root / "m.db", root / "art", root / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        mlflow_executable(),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--default-artifact-root",
        str(artifacts),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ready(url, proc, log)
        yield Server(url, db, artifacts)
    finally:
        stop(proc)


def test_both_readers_see_the_same_state(server: Server) -> None:
    http = MlflowStateStore.open(server.url, None)
    assert isinstance(http.reader, SearchReader)
    # Heads that move, a failed head, a run never finished, an evaluation run, a child run.
    record(http, new_run("quality/faq", FP_A), metrics={"accuracy": 0.5})
    record(http, new_run("quality/faq", FP_B), metrics={"accuracy": 0.75}, params={"k": "v"})
    record(http, new_run("quality/tone", "c" * 64), status="failed", error="boom")
    http.start_run(new_run("quality/tone", "c" * 64))
    http.start_run(new_run("quality/new", "d" * 64))
    parent = record(http, new_run("quality", "e" * 64, kind="evaluation"), metrics={"score": 1.0})
    record(http, new_run("other/faq", FP_A, experiment="evalhub/other", parent=parent))
    with_artifacts = record(http, new_run("other/tone", "f" * 64), artifacts={"r.json": b"[]"})
    other_tool = client(server.url).create_run("0", tags={"team": "else"})
    client(server.url).delete_run(record(http, new_run("gone/faq", "9" * 64)))

    wanted = [FP_A, FP_B, "c" * 64, "d" * 64, "f" * 64, "9" * 64, "0" * 64]
    over_http = http.read(wanted)
    sql = MlflowStateStore.open(f"sqlite:///{server.db}", None)
    assert isinstance(sql.reader, SqlReader)
    assert sql.read(wanted) == over_http

    assert {(r.name, r.status) for r in over_http.heads} == {
        ("quality/faq", "succeeded"),
        ("quality/tone", "failed"),
        ("quality", "succeeded"),
        ("other/faq", "succeeded"),
        ("other/tone", "succeeded"),
    }
    assert {(r.name, r.status) for r in over_http.by_fingerprint} == {
        ("quality/tone", "failed"),
        ("quality/tone", "running"),
        ("quality/new", "running"),
    }
    assert other_tool.info.run_id not in {r.run_id for r in over_http.heads}
    artifacts = client(server.url).list_artifacts(with_artifacts)
    assert [a.path for a in artifacts] == ["r.json"]
    assert over_http.unit_heads()["quality/faq"].metrics == {"accuracy": 0.75}
    assert over_http.unit_heads()["quality/faq"].tags[records.MODEL] == "assistant"

    # Runs a killed apply left running: both readers find the same, and marking them over
    # HTTP leaves none for either.
    running = sorted(http.reader.running())
    assert len(running) == 2 and running == sql.reader.running()
    assert sorted(http.fail_interrupted_runs()) == running
    assert http.reader.running() == [] and sql.reader.running() == []


def test_an_unreachable_server_fails_fast_with_a_hint() -> None:
    url = f"http://alice:s3cret@127.0.0.1:{free_port()}"  # nothing listens there
    store = MlflowStateStore.open(url, None)
    start = time.monotonic()
    with pytest.raises(StateError) as error:
        store.read([FP_A])
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"took {elapsed:.1f} s"  # a guard against minutes of retries
    message = f"{error.value} {error.value.hint}"
    assert url.replace("alice:s3cret@", "") in message
    assert "s3cret" not in message
    assert "tracking server running" in error.value.hint
    with pytest.raises(StateError):
        store.start_run(new_run())
