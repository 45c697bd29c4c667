"""A real `evalhub serve` on loopback, driven by EvalHub's own packages, unchanged: the SDK's
client (`eval-hub-sdk` 1.0.6), its CLI, and the Go MCP server `evalhub-mcp` 1.0.2 — each run
from their own virtualenv (scripts/eval_hub_clients.py builds it once under
~/.cache/evalhub/envs: their import package is also called `evalhub`).

Units run for real (`evalhub run-unit` processes, the built-in adapter) against the scripted
OpenAI-compatible server of tests/fake_openai.py, which counts every request — so "a
resubmitted job makes no model call" is counted, not assumed."""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalhub.adapters.environments import EnvironmentStore
from tests.fake_openai import Script, fake_openai
from tests.project import make_project, unit_runs
from tests.serving import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KEY = "EVALHUB_TEST_API_KEY"


@pytest.fixture(scope="session")
def clients() -> Path:
    """EvalHub's SDK, CLI and MCP server in their own virtualenv (built once, then cached)."""
    script = runpy.run_path(str(REPO / "scripts" / "eval_hub_clients.py"))
    env = EnvironmentStore().ensure(list(script["REQUIREMENTS"]))
    assert env is not None
    return env


def answer(prompt: str) -> str:
    if "card number" in prompt or "address on order" in prompt:
        return "I'm sorry, I can't share that."
    return "You have 60 days; returns are free and there is no restocking fee."


class Served:
    """`evalhub serve` as a user starts it, in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, KEY: "sk-test-not-a-real-key-0123"}
        command = [sys.executable, "-m", "evalhub.cli.main", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            command, cwd=self.root, env=env, start_new_session=True, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            time.sleep(0.05)
        raise AssertionError("evalhub serve did not answer /api/v1/health within 60 s")

    def units(self, deadline: float = 60.0) -> list[int]:
        """The unit processes the server started (its children), by PID, once there are."""
        assert self.proc is not None
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            children: list[int] = []
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                children += [int(p) for p in (task / "children").read_text().split()]
            found = [p for p in children if b"run-unit" in _cmdline(p)]  # not git, say
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError("the server started no unit process")

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is cleaned up."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def submit(self, body: dict[str, Any]) -> str:
        response = httpx.post(f"{self.url}/api/v1/evaluations/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["resource"]["id"]
        return job_id

    def wait(self, job_id: str, deadline: float = 120.0) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while (job := self.job(job_id))["status"]["state"] in ("pending", "running"):
            assert time.monotonic() < end, job
            time.sleep(0.05)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = httpx.get(f"{self.url}/api/v1/evaluations/jobs/{job_id}").json()
        return job


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # gone already


@pytest.fixture
def model() -> Iterator[tuple[str, Script]]:
    with fake_openai(Script(answer=answer)) as (url, script):
        yield url, script


@pytest.fixture
def served(tmp_path: Path, model: tuple[str, Script]) -> Iterator[Served]:
    root = make_project(tmp_path / "repo", model[0])
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "specs"], check=True)
    server = Served(root)
    server.start()
    yield server
    server.stop()


def in_clients(env: Path, cwd: Path, *args: str, stdin: str | None = None) -> str:
    """Run EvalHub's code in its own environment: isolated (-I), so no `evalhub` of ours can
    shadow theirs; no secret of ours in its environment."""
    clean = {"PATH": os.environ["PATH"], "HOME": str(cwd)}
    proc = subprocess.run(
        [str(env / "bin" / "python"), "-I", *args],
        cwd=cwd,
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


SDK_FLOW = """
import json, sys
from evalhub import SyncEvalHubClient
from evalhub.models.api import BenchmarkConfig, JobSubmissionRequest, ModelConfig

client = SyncEvalHubClient(base_url=sys.argv[1], max_retries=0)
request = JobSubmissionRequest(
    name=sys.argv[3],
    model=ModelConfig(name="fake-model", url=sys.argv[2]),
    benchmarks=[BenchmarkConfig(id="returns-qa", provider_id="builtin"),
                BenchmarkConfig(id="refusals", provider_id="builtin")],
)
job = client.jobs.submit(request)
done = client.jobs.wait_for_completion(job.resource.id, timeout=240, poll_interval=0.2)
print(json.dumps({
    "health": client.health()["status"],
    "providers": [p.resource.id for p in client.providers.list()],
    "benchmarks": sorted(b.id for b in client.benchmarks.list()),
    "collections": [c.resource.id for c in client.collections.list()],
    "submitted": job.status.state.value,
    "state": done.status.state.value,
    "results": [
        {"id": b.id, "metrics": b.metrics, "run": b.mlflow_run_id, "info": b.additional_info}
        for b in done.results.benchmarks
    ],
    "jobs": len(client.jobs.list()),
}))
"""


def test_the_sdk_client_lists_submits_waits_and_reads_results(
    clients: Path, served: Served, model: tuple[str, Script], tmp_path: Path
) -> None:
    url, script = model
    first = json.loads(in_clients(clients, tmp_path, "-c", SDK_FLOW, served.url, url, "first"))
    assert first["health"] == "healthy"
    assert first["providers"] == ["builtin"] and first["collections"] == ["quality@1"]
    assert first["benchmarks"] == ["refusals", "returns-qa"]
    assert first["submitted"] == "pending" and first["state"] == "completed"
    qa, refusals = first["results"]
    assert qa["metrics"]["contains"] == 1.0 and refusals["metrics"]["refusal"] == 1.0
    assert not qa["info"]["reused"]
    calls = script.generations
    assert calls == 5  # three questions, two refusal probes

    second = json.loads(in_clients(clients, tmp_path, "-c", SDK_FLOW, served.url, url, "again"))
    assert script.generations == calls  # not one model call
    assert second["state"] == "completed" and second["jobs"] == 2
    assert [r["run"] for r in second["results"]] == [r["run"] for r in first["results"]]
    assert all(r["info"]["reused"] for r in second["results"])
    assert [r[2] for r in unit_runs(served.root)] == ["FINISHED", "FINISHED"]  # once each


def test_the_sdk_cli_runs_a_job_with_wait(
    clients: Path, served: Served, model: tuple[str, Script], tmp_path: Path
) -> None:
    job = tmp_path / "job.json"
    body = {"name": "cli", "model": {"name": "fake-model", "url": model[0]}}
    job.write_text(
        json.dumps({**body, "benchmarks": [{"id": "refusals", "provider_id": "builtin"}]})
    )
    cli = "import sys; sys.argv[0] = 'evalhub'; from evalhub.cli.bootstrap import main; sys.exit(main())"
    out = in_clients(
        clients, tmp_path, "-c", cli, "--base-url", served.url,
        "eval", "run", "--config", str(job), "--wait",
    )  # fmt: skip
    assert "finished with state: completed" in out
    listed = in_clients(
        clients, tmp_path, "-c", cli, "--base-url", served.url, "collections", "list"
    )
    assert "quality" in listed


MCP_FLOW = """
import json, subprocess, sys, time
proc = subprocess.Popen([sys.argv[1], "--transport", "stdio"], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, text=True,
                        env={"EVALHUB_BASE_URL": sys.argv[2], "PATH": "/usr/bin:/bin"})
ids = iter(range(1, 1000))
def call(method, params=None):
    i = next(ids)
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params or {}}) + "\\n")
    proc.stdin.flush()
    while True:
        message = json.loads(proc.stdout.readline())
        if message.get("id") == i:
            return message
call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "evalhub-tests", "version": "1"}})
proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\\n")
proc.stdin.flush()
out = {"resources": sorted(r["uri"] for r in call("resources/list")["result"]["resources"])}
out["providers"] = json.loads(call("resources/read", {"uri": "evalhub://providers"})["result"]["contents"][0]["text"])
out["collections"] = json.loads(call("resources/read", {"uri": "evalhub://collections"})["result"]["contents"][0]["text"])
submitted = call("tools/call", {"name": "submit_evaluation", "arguments": {
    "name": "mcp", "model": {"url": sys.argv[3], "name": "fake-model"},
    "benchmarks": [{"id": "returns-qa", "provider_id": "builtin"}]}})["result"]["structuredContent"]
deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    status = call("tools/call", {"name": "get_job_status", "arguments": {"job_id": submitted["job_id"]}})
    state = status["result"]["structuredContent"]["state"]
    if state not in ("pending", "running"):
        break
    time.sleep(0.2)
out["submitted"], out["state"] = submitted, state
proc.stdin.close()
proc.wait(10)
print(json.dumps(out))
"""


def test_the_evalhub_mcp_server_reads_resources_and_submits_a_job(
    clients: Path, served: Served, model: tuple[str, Script], tmp_path: Path
) -> None:
    binary = str(clients / "bin" / "evalhub-mcp")
    out = json.loads(in_clients(clients, tmp_path, "-c", MCP_FLOW, binary, served.url, model[0]))
    assert "evalhub://providers" in out["resources"] and "evalhub://collections" in out["resources"]
    assert [p["resource"]["id"] for p in out["providers"]] == ["builtin"]
    assert [c["resource"]["id"] for c in out["collections"]] == ["quality@1"]
    assert out["submitted"]["state"] == "pending" and out["state"] == "completed"
    assert (
        served.job(out["submitted"]["job_id"])["results"]["benchmarks"][0]["metrics"]["contains"]
        == 1.0
    )


def held(release: threading.Event) -> Script:
    """A model that answers nothing until `release` is set (at most 60 s)."""
    return Script(answer=lambda prompt: (release.wait(60), answer(prompt))[1])


def test_a_server_killed_mid_job_is_honest_after_restart_and_records_nothing_twice(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    with fake_openai(held(release)) as (url, _):
        root = make_project(tmp_path / "repo", url)
        server = Served(root)
        server.start()
        try:
            body = {
                "name": "killed",
                "model": {"name": "assistant"},
                "benchmarks": [{"id": "refusals", "provider_id": "builtin"}],
            }
            job_id = server.submit(body)
            units = server.units()  # the unit runs, waiting on the model ...
            deadline = time.monotonic() + 60
            while server.job(job_id)["status"]["benchmarks"][0]["status"] != "running":
                assert time.monotonic() < deadline, server.job(job_id)  # ... and is recorded
                time.sleep(0.05)
            server.kill()
            for pid in units:  # the unit ran in its own session; it would finish unrecorded
                with contextlib.suppress(ProcessLookupError):  # or died with its pipes
                    os.killpg(pid, signal.SIGKILL)
            assert [r[2] for r in unit_runs(root)] == ["RUNNING"]

            release.set()
            server.start()
            job = server.job(job_id)
            assert job["status"]["state"] == "failed"
            assert "interrupted: the server stopped" in job["status"]["message"]["message"]
            retried = server.wait(server.submit({**body, "name": "retry"}))
            assert retried["status"]["state"] == "completed"
            # The interrupted run is failed (KILLED), the unit ran again once; nothing else.
            assert sorted(r[2] for r in unit_runs(root)) == ["FINISHED", "KILLED"]
        finally:
            release.set()
            server.stop()


def test_a_unit_process_that_dies_fails_its_job_with_the_reason(tmp_path: Path) -> None:
    release = threading.Event()
    with fake_openai(held(release)) as (url, _):
        server = Served(make_project(tmp_path / "repo", url))
        server.start()
        try:
            body = {
                "name": "dies",
                "model": {"name": "assistant"},
                "benchmarks": [{"id": "refusals", "provider_id": "builtin"}],
            }
            job_id = server.submit(body)
            (unit,) = server.units()
            os.killpg(unit, signal.SIGKILL)  # the OOM killer, say: no result, no report
            job = server.wait(job_id)
            assert job["status"]["state"] == "failed"
            why = job["status"]["benchmarks"][0]["error_message"]["message"]
            assert "signal 9" in why or "SIGKILL" in why or "-9" in why, why
        finally:
            release.set()
            server.stop()


def test_a_model_key_an_endpoint_echoes_never_reaches_a_response_or_log(tmp_path: Path) -> None:
    key = "sk-test-not-a-real-key-0123"  # what Served exports as the Model's key variable
    with fake_openai(Script(always=401, echo_headers=True)) as (url, script):
        server = Served(make_project(tmp_path / "repo", url))
        server.start()
        try:
            body = {
                "name": "echo",
                "model": {"name": "assistant"},
                "benchmarks": [{"id": "refusals", "provider_id": "builtin"}],
            }
            job_id = server.submit(body)
            server.wait(job_id)
            assert any(key in h.get("Authorization", "") for h in script.headers)  # it was sent
            job = httpx.get(f"{server.url}/api/v1/evaluations/jobs/{job_id}").text
            logs = httpx.get(f"{server.url}/api/v1/evaluations/jobs/{job_id}/logs").text
            listed = httpx.get(f"{server.url}/api/v1/evaluations/jobs").text
            assert "invalid credentials" in job  # the endpoint's words are kept ...
            for text in (job, logs, listed):
                assert key not in text  # ... its echo of the key is not
            stored = "".join(
                p.read_text()
                for p in (server.root / ".evalhub" / "serve" / "jobs").iterdir()
                if p.is_file()
            )
            assert key not in stored
        finally:
            server.stop()
