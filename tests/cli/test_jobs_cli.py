"""`evalhub jobs` and evalhub.client against a served control plane (uvicorn on loopback, a
scripted executor behind it): --wait exits 0 when the job passed its gate, 2 when it completed
but failed it, 1 when any unit failed (EvalHub's CLI calls that a success); profiles name the
token's variable; only idempotent requests are retried."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from evalhub.app.control_plane import ControlPlane, Seams
from evalhub.app.project import load_project
from evalhub.app.serve import build
from evalhub.cli.main import main
from evalhub.client import AsyncEvalhubClient, ClientError, EvalhubClient
from evalhub.core.api import JobRequest
from tests.fakes import MemoryStateStore, NoEnvironments, ScriptedExecutor, failing
from tests.project import make_project
from tests.serving import serving

URL = "http://127.0.0.1:9/v1"
SCRIPT: dict[str, Any] = {
    "*/returns-qa": {"contains": 1.0},
    "*/refusals": {"refusal": 0.5},
    "*/refusals-2": failing("the endpoint answered 500"),
}


def body(threshold: float, repeat: bool = False) -> dict[str, Any]:
    benchmarks = [
        {"id": "returns-qa", "provider_id": "builtin"},
        {"id": "refusals", "provider_id": "builtin"},
    ]
    if repeat:  # the same benchmark again (other params): a third unit, which fails
        benchmarks.append({"id": "refusals", "provider_id": "builtin", "parameters": {"seed": 7}})
    return {
        "name": "cli",
        "model": {"name": "assistant"},
        "benchmarks": benchmarks,
        "pass_criteria": {"threshold": threshold},
    }


@pytest.fixture
def plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ControlPlane]]:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("SERVE_WRITE", "write-token-abcdef")
    root = make_project(tmp_path / "repo", URL)
    (root / "evalhub.yaml").write_text(
        (root / "evalhub.yaml").read_text() + "serve: {write_token_env: SERVE_WRITE}\n"
    )
    seams = Seams(MemoryStateStore(), ScriptedExecutor(SCRIPT), NoEnvironments())
    control, app = build(load_project(root), "127.0.0.1", seams)
    control.start()
    with serving(app) as url:
        profiles = tmp_path / "config" / "evalhub" / "servers.yaml"
        profiles.parent.mkdir(parents=True)
        profiles.write_text(
            f"default: here\nservers:\n  here: {{url: '{url}', token_env: SERVE_WRITE}}\n"
        )
        yield url, control
    control.stop()


def submit(tmp_path: Path, job: dict[str, Any], *args: str) -> int:
    file = tmp_path / "job.json"
    file.write_text(json.dumps(job))
    return main(["jobs", "submit", str(file), "--wait", *args])


def test_wait_exit_codes_follow_the_gate_and_partial_failure(
    plane: tuple[str, ControlPlane], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert submit(tmp_path, body(0.5), "--format", "json") == 0  # (1.0 + 0.5) / 2 = 0.75
    job = json.loads(capsys.readouterr().out)
    assert job["status"]["state"] == "completed" and job["results"]["test"]["pass"] is True
    assert submit(tmp_path, body(0.9)) == 2  # completed, below its threshold
    assert "score 0.75 (threshold 0.9): fail" in capsys.readouterr().out
    assert submit(tmp_path, body(0.5, repeat=True)) == 1  # a unit failed
    text = capsys.readouterr().out
    assert "partially_failed" in text and "the endpoint answered 500" in text


def test_get_list_logs_and_cancel(
    plane: tuple[str, ControlPlane], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "submit", "--evaluation", "quality", "--wait"]) == 0
    job_id = capsys.readouterr().out.split()[1]
    assert main(["jobs", "get", job_id, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["evaluation"] == "quality"
    assert main(["jobs", "list"]) == 0
    assert job_id in capsys.readouterr().out
    assert main(["jobs", "logs", job_id, "--tail", "1"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["jobs", "cancel", job_id]) == 1  # finished: 409
    assert "is completed already" in capsys.readouterr().err
    assert main(["jobs", "cancel", job_id, "--hard"]) == 0
    assert main(["jobs", "get", job_id]) == 1


def test_a_profile_without_its_token_and_a_wrong_server_are_clean_errors(
    plane: tuple[str, ControlPlane],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SERVE_WRITE")
    assert main(["jobs", "list"]) == 1
    assert "takes its token from SERVE_WRITE, which is not set" in capsys.readouterr().err
    assert main(["jobs", "--server", plane[0], "list"]) == 1  # no token at all: 401
    assert "401: a bearer token is required" in capsys.readouterr().err
    assert main(["jobs", "--server", "http://127.0.0.1:9", "list"]) == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_only_idempotent_requests_are_retried() -> None:
    seen: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(503, json={"message_code": "unavailable", "message": "busy"})

    client = EvalhubClient("http://x", retries=2, transport=httpx.MockTransport(flaky))
    with pytest.raises(ClientError, match="503: busy"):
        client.get("some-job")
    assert seen == ["GET", "GET", "GET"]
    seen.clear()
    with pytest.raises(ClientError, match="503: busy"):
        client.submit(JobRequest(name="x", evaluation="quality"))
    assert seen == ["POST"]  # a retried submission could start a second job


def test_the_async_client_waits_and_retries_like_the_sync_one() -> None:
    states = iter(["pending", "running", "completed"])
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) == 1:
            return httpx.Response(502, json={"message_code": "bad_gateway", "message": "proxy"})
        job = {
            "resource": {"id": "j1"},
            "name": "x",
            "status": {"state": next(states), "message": {"message": "m", "message_code": "c"}},
        }
        return httpx.Response(200, json=job)

    async def scenario() -> str:
        async with AsyncEvalhubClient("http://x", transport=httpx.MockTransport(server)) as client:
            done = await client.wait_for_completion("j1", poll=0)
            return done.status.state

    assert anyio.run(scenario) == "completed"
    assert seen == ["GET"] * 4  # the 502 retried, then polled until terminal
