"""`evalhub serve` in process: EvalHub's routes and shapes over a spec repository, jobs applied
through evalhub's own path (in-memory store, scripted executor: tests/fakes.py), recorded
units reused, specs read-only, tokens, limits, and a restart in the middle of a job.

tests/integration/test_serve_clients.py drives a real `evalhub serve` with EvalHub's own SDK,
CLI and MCP server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalhub.app.control_plane import ControlPlane, Seams
from evalhub.app.job_store import StoredJob
from evalhub.app.locks import apply_lock
from evalhub.app.plan import make_project_plan
from evalhub.app.project import load_project
from evalhub.app.serve import build
from evalhub.core import records
from evalhub.core.errors import ConfigError
from tests.fakes import MemoryStateStore, NoEnvironments, ScriptedExecutor, failing
from tests.project import make_project
from tests.serving import serving

URL = "http://127.0.0.1:9/v1"  # nothing listens: the scripted executor answers for the model
GOOD: dict[str, Any] = {"*/returns-qa": {"contains": 1.0}, "*/refusals": {"refusal": 0.5}}
API = "/api/v1/evaluations"
JOB = {
    "name": "smoke",
    "model": {"name": "fake-model", "url": URL},
    "benchmarks": [
        {
            "id": "returns-qa",
            "provider_id": "builtin",
            "weight": 3,
            "pass_criteria": {"threshold": 0.9},
        },
        {"id": "refusals", "provider_id": "builtin", "weight": 1},
    ],
    "pass_criteria": {"threshold": 0.6},
}


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


class Server:
    def __init__(self, root: Path, store: MemoryStateStore, executor: ScriptedExecutor) -> None:
        self.root, self.store, self.executor = root, store, executor
        seams = Seams(store=store, executor=executor, environments=NoEnvironments())
        self.plane, self.app = build(load_project(root), "127.0.0.1", seams)
        self._serving = serving(self.app)
        self.client = httpx.Client(base_url=self._serving.__enter__(), timeout=30)

    def close(self) -> None:
        self.plane.stop()
        self.client.close()
        self._serving.__exit__(None, None, None)

    def wait(self, job_id: str, deadline: float = 30.0) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            job: dict[str, Any] = self.client.get(f"{API}/jobs/{job_id}").json()
            if job["status"]["state"] not in ("pending", "running"):
                return job
            time.sleep(0.01)
        raise AssertionError(f"job {job_id} still {job['status']['state']} after {deadline}s")

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"{API}/jobs", json=body)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["resource"]["id"])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path, URL)


Make = Callable[[Path, MemoryStateStore, ScriptedExecutor], Server]


@pytest.fixture
def make() -> Iterator[Make]:
    made: list[Server] = []

    def factory(root: Path, store: MemoryStateStore, executor: ScriptedExecutor) -> Server:
        made.append(Server(root, store, executor))
        return made[-1]

    yield factory
    for server in made:
        server.close()


@pytest.fixture
def server(root: Path, make: Make) -> Server:
    running = make(root, MemoryStateStore(), ScriptedExecutor(GOOD))
    running.plane.start()
    return running


# -- routes and shapes ---------------------------------------------------------------------------


def test_health_and_the_openapi_document(server: Server) -> None:
    health = server.client.get("/api/v1/health").json()
    assert health["status"] == "healthy" and health["framework_id"] == "evalhub"
    paths = server.client.get("/openapi.json").json()["paths"]
    assert {
        f"{API}/jobs",
        f"{API}/jobs/{{job_id}}",
        f"{API}/providers",
        f"{API}/collections",
    } <= set(paths)


def test_providers_and_collections_come_from_the_specs(server: Server) -> None:
    providers = server.client.get(f"{API}/providers").json()
    assert providers["total_count"] == 1 and providers["limit"] == 50
    assert "offset=0" in providers["first"]["href"] and "next" not in providers
    (builtin,) = providers["items"]
    assert builtin["resource"]["id"] == "builtin" and builtin["runtime"] == {}
    assert [b["id"] for b in builtin["benchmarks"]] == ["returns-qa", "refusals"]
    assert builtin["benchmarks"][0]["primary_score"] == {
        "metric": "contains",
        "lower_is_better": False,
    }
    collection = server.client.get(f"{API}/collections/quality").json()
    assert collection["resource"]["id"] == "quality@1"
    assert [(b["id"], b["weight"]) for b in collection["benchmarks"]] == [
        ("returns-qa", 2.0),
        ("refusals", 1.0),
    ]
    assert server.client.get(f"{API}/collections/quality@1").json() == collection
    missing = server.client.get(f"{API}/providers/lm-eval")
    assert missing.status_code == 404
    assert missing.json()["message_code"] == "not_found" and "lm-eval" in missing.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{API}/providers"),
        ("PUT", f"{API}/providers/builtin"),
        ("PATCH", f"{API}/providers/builtin"),
        ("DELETE", f"{API}/providers/builtin"),
        ("POST", f"{API}/collections"),
        ("PUT", f"{API}/collections/quality"),
        ("PATCH", f"{API}/collections/quality"),
        ("DELETE", f"{API}/collections/quality"),
    ],
)
def test_specs_cannot_be_written_over_the_api(server: Server, method: str, path: str) -> None:
    body = {"name": "x", "runtime": {"local": {"command": "touch /tmp/pwned"}}, "benchmarks": []}
    response = server.client.request(method, path, json=body)
    assert response.status_code == 405
    assert response.json()["message_code"] == "specs_in_git"
    assert "pull request" in response.json()["message"]
    assert server.client.get(f"{API}/providers").json()["total_count"] == 1


# -- jobs through evalhub's path -----------------------------------------------------------------


def test_a_job_runs_through_apply_and_reports_in_evalhub_shapes(server: Server) -> None:
    job = server.submit(JOB)

    assert job["status"]["state"] == "completed", job["status"]
    assert [b["status"] for b in job["status"]["benchmarks"]] == ["completed", "completed"]
    first, second = job["results"]["benchmarks"]
    assert (first["id"], first["provider_id"], first["benchmark_index"]) == (
        "returns-qa",
        "builtin",
        0,
    )
    assert first["metrics"]["contains"] == 1.0 and first["metrics"]["samples"] == 3
    assert first["test"] == {"primary_score": 1.0, "threshold": 0.9, "pass": True}
    assert second["test"] == {"primary_score": 0.5, "pass": True}  # no threshold: a pass
    # Weights are honoured (EvalHub's client drops them): (3 * 1.0 + 1 * 0.5) / 4.
    assert job["results"]["test"] == {"score": 0.875, "threshold": 0.6, "pass": True}
    assert first["additional_info"]["weight"] == 3.0 and first["additional_info"]["reused"] is False
    # Recorded exactly like apply: one run per unit (tagged with its fingerprint) and one for
    # the evaluation, which the job names.
    units = server.store.of_kind("unit")
    assert sorted(r.tags[records.FINGERPRINT] for r in units) == sorted(
        b["additional_info"]["fingerprint"] for b in job["results"]["benchmarks"]
    )
    assert {r.run_id for r in units} == {b["mlflow_run_id"] for b in job["results"]["benchmarks"]}
    (evaluation,) = server.store.of_kind("evaluation")
    assert evaluation.name == job["evaluation"] and evaluation.name.startswith("api-job-")
    # No spec defines it: recorded (and signed when a key is at hand), not in the git ledger.
    assert not (server.root / "results").exists()
    # Nor is it an orphan of the specs in `evalhub plan`.
    plan = make_project_plan(load_project(server.root), store=server.store, publishing=False)
    assert [(a.evaluation, a.action) for a in plan.plan.actions] == [("quality", "create")]


def test_an_identical_job_reuses_every_recorded_unit_and_records_nothing(server: Server) -> None:
    first = server.submit(JOB)
    runs = len(server.store.runs)
    second = server.submit({**JOB, "name": "again"})

    assert server.executor.ran == [
        f"{first['evaluation']}/returns-qa",
        f"{first['evaluation']}/refusals",
    ]
    assert second["evaluation"] == first["evaluation"]  # named by its content
    assert len(server.store.runs) == runs  # nothing recorded twice
    assert second["status"]["state"] == "completed"
    assert all(b["additional_info"]["reused"] for b in second["results"]["benchmarks"])
    assert second["results"] == {
        **first["results"],
        "benchmarks": [
            {**b, "additional_info": {**b["additional_info"], "reused": True}}
            for b in first["results"]["benchmarks"]
        ],
    }


def test_units_are_shared_with_the_repository_s_evaluations(server: Server) -> None:
    by_name = server.submit({"name": "repo", "evaluation": "quality"})
    assert by_name["status"]["state"] == "completed" and len(server.executor.ran) == 2
    assert by_name["evaluation"] == "quality"
    assert (
        json.loads((server.root / "results" / "quality.json").read_text())["evaluation"]
        == "quality"
    )
    # The same units as a job of benchmarks: the evaluation's `seed: 1` is part of each unit's
    # parameters, so the job gives it too — same fingerprints, nothing re-run.
    same = [{**b, "parameters": {"seed": 1}} for b in JOB["benchmarks"]]
    job = server.submit({**JOB, "benchmarks": same})
    assert len(server.executor.ran) == 2
    assert [b["additional_info"]["reused"] for b in job["results"]["benchmarks"]] == [True, True]
    assert [b["mlflow_run_id"] for b in job["results"]["benchmarks"]] == [
        b["mlflow_run_id"] for b in by_name["results"]["benchmarks"]
    ]
    # The collection without the seed: other parameters, other units — they run.
    collection = {"name": "coll", "model": {"name": "assistant"}, "collection": {"id": "quality"}}
    other = server.submit(collection)
    assert len(server.executor.ran) == 4 and other["status"]["state"] == "completed"
    assert other["collection"] == {"id": "quality"}


def test_a_failed_unit_makes_the_job_partially_failed_with_the_reason(
    root: Path, make: Make
) -> None:
    script = {**GOOD, "*/refusals": failing("the endpoint answered 500 three times")}
    server = make(root, MemoryStateStore(), ScriptedExecutor(script))
    server.plane.start()
    try:
        job = server.submit(JOB)
    finally:
        server.plane.stop()
    assert job["status"]["state"] == "partially_failed"
    failed = job["status"]["benchmarks"][1]
    assert failed["status"] == "failed"
    assert "answered 500" in failed["error_message"]["message"]
    assert job["results"]["test"]["pass"] is False  # a partial result never passes
    logs = server.client.get(f"{API}/jobs/{job['resource']['id']}/benchmarks/1/logs").text
    assert "refusals failed: the endpoint answered 500" in logs and "returns-qa" not in logs


# -- bad jobs: 400 with EvalHub's error shape, nothing queued ------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"benchmarks": [{"id": "returns-qa", "provider_id": "builtn"}]}, "did you mean 'builtin'"),
        ({"benchmarks": [{"id": "return-qa", "provider_id": "builtin"}]}, "return-qa"),
        ({"model": {"name": "gpt-4", "url": URL}}, "no Model named 'gpt-4'"),
        ({"model": {"name": "assistant", "url": "http://evil.example/v1"}}, "model.url"),
        ({"model": {"name": "assistant", "auth": {"secret_ref": "file:///x"}}}, "model.auth"),
        ({"exports": {"oci": {"coordinates": {"oci_host": "evil.example"}}}}, "registry.target"),
        ({"collection": {"id": "quality@7"}, "benchmarks": None}, "no version '7'"),
        ({"command": "rm -rf /"}, "command"),
        (
            {
                "benchmarks": [
                    {
                        "id": "refusals",
                        "provider_id": "builtin",
                        "parameters": {"api_key": "sk-abcdefghijklmnop1234"},
                    }
                ]
            },
            "secret",
        ),
    ],
)
def test_a_job_the_specs_cannot_run_is_a_400(
    server: Server, change: dict[str, Any], says: str
) -> None:
    body = {k: v for k, v in {**JOB, **change}.items() if v is not None}
    response = server.client.post(f"{API}/jobs", json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["message_code"] == "bad_request" and says in error["message"]
    assert "sk-abcdefghijklmnop1234" not in response.text
    assert server.client.get(f"{API}/jobs").json()["total_count"] == 0


# -- listing, cancelling, logs -------------------------------------------------------------------


def test_list_filters_pages_and_hard_delete(server: Server) -> None:
    ids = [server.submit({**JOB, "name": f"job-{i}"})["resource"]["id"] for i in range(3)]
    page = server.client.get(f"{API}/jobs", params={"limit": 2}).json()
    assert (
        page["total_count"] == 3 and len(page["items"]) == 2 and "offset=2" in page["next"]["href"]
    )
    named = server.client.get(f"{API}/jobs", params={"name": "job-1"}).json()
    assert [j["resource"]["id"] for j in named["items"]] == [ids[1]]
    assert server.client.get(f"{API}/jobs", params={"status": "failed"}).json()["total_count"] == 0
    # A finished job cannot be cancelled (409, as EvalHub), but can be deleted for good.
    assert server.client.delete(f"{API}/jobs/{ids[0]}").status_code == 409
    assert (
        server.client.delete(f"{API}/jobs/{ids[0]}", params={"hard_delete": "true"}).status_code
        == 204
    )
    assert server.client.get(f"{API}/jobs/{ids[0]}").status_code == 404
    log = server.client.get(f"{API}/jobs/{ids[1]}/logs", params={"tail_lines": 1}).text
    assert log.count("\n") == 1 and "completed" in log


def test_a_queued_job_can_be_cancelled_and_never_runs(root: Path, make: Make) -> None:
    server = make(root, MemoryStateStore(), ScriptedExecutor(GOOD))  # worker not started
    job_id = server.client.post(f"{API}/jobs", json=JOB).json()["resource"]["id"]
    assert server.client.delete(f"{API}/jobs/{job_id}").status_code == 204
    server.plane.start()
    later = server.submit({**JOB, "name": "after"})
    server.plane.stop()
    assert server.client.get(f"{API}/jobs/{job_id}").json()["status"]["state"] == "cancelled"
    assert later["status"]["state"] == "completed" and len(server.executor.ran) == 2


# -- restart ---------------------------------------------------------------------------------------


def test_a_job_running_when_the_server_died_is_failed_and_its_units_retried(
    root: Path, make: Make
) -> None:
    store = MemoryStateStore()
    dying = ScriptedExecutor(GOOD, interrupt_at="*/refusals", report_interrupted=False)
    first = make(root, store, dying)
    job_id = first.client.post(f"{API}/jobs", json=JOB).json()["resource"]["id"]
    stored = first.plane._jobs[job_id]
    stored.state = "running"  # the worker took it ...
    with pytest.raises(KeyboardInterrupt):  # ... and the server died in the middle of a unit
        first.plane._apply(stored, first.plane.resolve(stored.request))
    first.plane._save(stored)
    first.plane.stop()  # the process is gone: it owns the jobs no more
    # The interrupted apply failed the unit it was running (a SIGKILL leaves it running, which
    # the next apply fails: tests/integration/test_serve_clients.py kills a real server).
    assert [r.status for r in store.of_kind("unit")] == ["succeeded", "failed"]

    second = make(root, store, ScriptedExecutor(GOOD))
    job = second.client.get(f"{API}/jobs/{job_id}").json()
    assert job["status"]["state"] == "failed"
    assert "interrupted: the server stopped" in job["status"]["message"]["message"]
    second.plane.start()
    again = second.submit(JOB)
    second.plane.stop()
    assert again["status"]["state"] == "completed"
    assert [b["additional_info"]["reused"] for b in again["results"]["benchmarks"]] == [True, False]
    assert second.executor.ran == [f"{again['evaluation']}/refusals"]  # only the lost unit
    statuses = sorted((r.name, r.status) for r in store.of_kind("unit"))
    assert [s for _, s in statuses] == ["failed", "succeeded", "succeeded"]  # nothing twice


def test_jobs_survive_a_restart(server: Server, root: Path) -> None:
    done = server.submit(JOB)
    stored = StoredJob.model_validate_json(
        (root / ".evalhub" / "serve" / "jobs" / f"{done['resource']['id']}.json").read_bytes()
    )
    assert stored.state == "completed"
    with pytest.raises(ConfigError, match="another evalhub serve is serving this project's jobs"):
        ControlPlane(load_project(root), Seams(store=server.store))  # while the first runs
    server.plane.stop()
    again = ControlPlane(load_project(root), Seams(store=server.store))
    assert (
        again.get(done["resource"]["id"]).model_dump(mode="json", by_alias=True, exclude_none=True)
        == done
    )


# -- access ----------------------------------------------------------------------------------------

WRITE_ROUTES = [  # every route that is not a GET, from the served OpenAPI document
    ("POST", f"{API}/jobs"),
    ("DELETE", f"{API}/jobs/{{job_id}}"),
    ("POST", f"{API}/providers"),
    ("PUT", f"{API}/providers/{{resource_id}}"),
    ("PATCH", f"{API}/providers/{{resource_id}}"),
    ("DELETE", f"{API}/providers/{{resource_id}}"),
    ("POST", f"{API}/collections"),
    ("PUT", f"{API}/collections/{{resource_id}}"),
    ("PATCH", f"{API}/collections/{{resource_id}}"),
    ("DELETE", f"{API}/collections/{{resource_id}}"),
]


def test_the_write_routes_are_all_listed_here(server: Server) -> None:
    paths = server.client.get("/openapi.json").json()["paths"]
    writes = {(m.upper(), p) for p, ops in paths.items() for m in ops if m != "get"}
    assert writes == set(WRITE_ROUTES)


@pytest.fixture
def guarded(root: Path, make: Make, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("SERVE_READ", "read-token-123456")
    monkeypatch.setenv("SERVE_WRITE", "write-token-abcdef")
    config = root / "evalhub.yaml"
    config.write_text(
        config.read_text() + "serve: {read_token_env: SERVE_READ, write_token_env: SERVE_WRITE}\n"
    )
    return make(root, MemoryStateStore(), ScriptedExecutor(GOOD))


@pytest.mark.parametrize(("method", "route"), WRITE_ROUTES)
def test_every_write_route_refuses_a_missing_or_read_only_token(
    guarded: Server, method: str, route: str
) -> None:
    path = route.replace("{job_id}", "some-id").replace("{resource_id}", "quality")
    body = JOB if path.endswith("/jobs") else {}
    bare = guarded.client.request(method, path, json=body)
    assert bare.status_code == 401 and bare.json()["message_code"] == "unauthorized"
    reader = {"Authorization": "Bearer read-token-123456"}
    readonly = guarded.client.request(method, path, json=body, headers=reader)
    assert readonly.status_code == 403 and readonly.json()["message_code"] == "forbidden"
    assert "read-token-123456" not in readonly.text
    writer = {"Authorization": "Bearer write-token-abcdef"}
    assert guarded.client.request(method, path, json=body, headers=writer).status_code not in (
        401,
        403,
    )


def test_reads_need_a_token_too(guarded: Server) -> None:
    assert guarded.client.get(f"{API}/jobs").status_code == 401
    wrong = guarded.client.get(f"{API}/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    for token in ("read-token-123456", "write-token-abcdef"):
        ok = guarded.client.get(f"{API}/jobs", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


def test_a_public_bind_requires_tokens(root: Path) -> None:
    with pytest.raises(ConfigError, match="without tokens"):
        build(load_project(root), "0.0.0.0")


def test_a_body_over_the_limit_is_refused(server: Server) -> None:
    huge = {**JOB, "description": "x" * (2 << 20)}
    response = server.client.post(f"{API}/jobs", content=json.dumps(huge))
    assert response.status_code == 413 and response.json()["message_code"] == "request_too_large"


def test_a_job_waits_for_an_apply_running_beside_the_server(server: Server) -> None:
    project = load_project(server.root)
    with apply_lock(project, server.store.identity, lambda: None):  # `evalhub apply` runs
        job_id = server.client.post(f"{API}/jobs", json=JOB).json()["resource"]["id"]
        end = time.monotonic() + 20
        while (
            "waiting for the apply lock" not in server.client.get(f"{API}/jobs/{job_id}/logs").text
        ):
            assert time.monotonic() < end, "the job never waited for the apply lock"
            time.sleep(0.01)
        assert server.client.get(f"{API}/jobs/{job_id}").json()["status"]["state"] == "running"
        assert server.executor.ran == []  # nothing runs while the other apply holds the lock
    assert server.wait(job_id)["status"]["state"] == "completed"
    assert len(server.executor.ran) == 2
