"""The evalhub-sdk adapter with a stand-in for an SDK adapter: a fake environment whose `python`
reads the job.json it is given and POSTs EvalHub's events to the callback route over loopback,
as `DefaultCallbacks` does (the real SDK runs in tests/integration/test_evalhub_sdk.py). Each way
an adapter can go wrong fails the unit with its reason, and stops its process."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.frameworks.evalhub_sdk import BOOTSTRAP, EvalhubSdkAdapter
from evalhub.adapters.frameworks.sdk_callbacks import serve
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from evalhub.core.sdk_events import Target
from tests.specs import StatusRecorder, fake_environment, framework_job, gone, seen

KEY = "sk-sdk-test-" + "k" * 24
MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1", api: chat, served_name: smollm2-135m, api_key_env: SDK_TEST_KEY}
  revision: v1
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: team-sdk}
spec:
  adapter: evalhub-sdk
  requirements: ["eval-hub-sdk[adapter]==1.0.6"]
  config: {module: team.sdk_adapter}
  benchmarks:
    - {id: qa, primary_metric: contains}
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: sdk}
spec:
  model: assistant
  benchmarks: [{provider: team-sdk, benchmark: qa}]
  params: {limit: 2, seed: 7}
"""

# The stand-in: what an SDK adapter does over the wire, one MODE per way it can behave.
ADAPTER = """
import stat, time, urllib.error, urllib.request
spec_path = Path(os.environ["EVALHUB_JOB_SPEC_PATH"])
job = json.loads(spec_path.read_text())
(ENV / "pid").write_text(str(os.getpid()))
url = job["callback_url"] + "/api/v1/evaluations/jobs/" + job["id"] + "/events"
ours = {"provider_id": job["provider_id"], "id": job["benchmark_id"], "benchmark_index": 0}

def post(**event):
    body = json.dumps({"benchmark_status_event": {**ours, **event}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    with open(ENV / "answers", "a") as handle:
        handle.write(f"{status}\\n")

secret = Path(job["model"]["auth"]["secret_ref"].removeprefix("file://")) / "api-key"
(ENV / "secret.json").write_text(json.dumps({
    "key": secret.read_text(), "mode": stat.S_IMODE(secret.stat().st_mode),
    "dir_mode": stat.S_IMODE(secret.parent.stat().st_mode),
    "elsewhere": [str(p) for p in spec_path.parent.parent.rglob("*")
                  if p.is_file() and p != secret and secret.read_text() in p.read_text()],
}))
if MODE not in ("silent", "exit1"):
    post(status="running", phase="loading_data")
done = dict(status="completed", metrics={"contains": 0.5, "labels": ["a"]}, overall_score=0.5,
            artifacts={"evalhub.env_card": {"framework_name": "fakefw", "framework_version": "9"},
                       "evalhub.eval_card": {"languages": ["en"]}, "oci_digest": "sha256:ab"})
if MODE == "ok":
    post(status="running", phase="running_evaluation")
    (spec_path.parent.parent / "samples.jsonl").write_text('{"id": 1}\\n')
    post(**done)
elif MODE == "exit1":
    print("Traceback: the adapter broke", file=sys.stderr)
    sys.exit(1)
elif MODE == "silent":
    pass
elif MODE == "results-then-exit3":
    post(**done)
    sys.exit(3)
elif MODE == "failed":
    post(status="failed", error_message={"message": "dataset missing", "message_code": "E1"})
    time.sleep(60)
elif MODE == "malformed":
    post(status="finished")
    time.sleep(60)
elif MODE == "twice":
    post(**done)
    post(**done)
elif MODE == "hang":
    time.sleep(60)
"""


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDK_TEST_KEY", KEY)


def job_for(tmp_path: Path, mode: str, timeout: float = 60) -> tuple[JobSpec, Path]:
    env = fake_environment(tmp_path / "env", "from pathlib import Path\n" + ADAPTER, mode)
    job = framework_job(tmp_path, MODEL, PROVIDER, EVALUATION, environment=env, timeout=timeout)
    return job, env


def run(job: JobSpec) -> tuple[StatusRecorder, JobResults]:
    recorder = StatusRecorder()
    return recorder, EvalhubSdkAdapter().run_benchmark_job(job, recorder)


def fails(job: JobSpec) -> UnitError:
    with pytest.raises(UnitError) as caught:
        run(job)
    return caught.value


def test_a_reporting_adapter_becomes_the_units_result(tmp_path: Path) -> None:
    job, env = job_for(tmp_path, "ok")
    recorder, result = run(job)
    out = Path(job.output_dir)
    given = seen(env)
    assert given["argv"][1:] == [
        "-P", "-c", BOOTSTRAP, "team.sdk_adapter", job.project_root, job.spec_root,
    ]  # fmt: skip
    assert given["cwd"] == str(out)
    assert given["env"]["EVALHUB_MODE"] == "local"
    assert given["env"]["EVALHUB_JOB_SPEC_PATH"] == str(out / "meta" / "job.json")
    assert "127.0.0.1" in given["env"]["NO_PROXY"].split(",")
    document = json.loads((out / "meta" / "job.json").read_text())
    assert document["num_examples"] == 2 and document["parameters"] == {"seed": 7}
    assert result.status == "succeeded"
    assert result.metrics == {"contains": 0.5, "overall_score": 0.5}
    assert (result.framework, result.framework_version) == ("fakefw", "9")
    assert [u.phase for u in recorder.updates] == ["initializing", "running", "completed"]
    artifacts = result.artifacts
    for name in (
        "adapter.log",
        "events.jsonl",
        "meta/job.json",
        "evalhub.env_card.json",
        "samples.jsonl",
    ):
        assert (out / artifacts[name]).is_file(), name
    assert json.loads((out / "evalhub.eval_card.json").read_text()) == {"languages": ["en"]}
    kept = json.loads((out / "sdk-artifacts.json").read_text())
    assert kept["artifacts"] == {"oci_digest": "sha256:ab"}
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["status"] for e in events] == [204, 204, 204]


def test_the_key_is_only_in_the_secret_file_and_only_while_the_unit_runs(tmp_path: Path) -> None:
    job, env = job_for(tmp_path, "ok")
    run(job)
    secret = json.loads((env / "secret.json").read_text())
    # while the unit runs: in the secret file (owner-only), in no other file of the unit
    assert secret == {"key": KEY, "mode": 0o600, "dir_mode": 0o700, "elsewhere": []}
    assert KEY not in json.dumps(seen(env)["env"])  # not in the adapter's environment
    out = Path(job.output_dir)
    assert not (out / ".secrets").exists()
    assert all(KEY not in p.read_text() for p in out.rglob("*") if p.is_file())


def test_a_non_zero_exit_fails_with_the_log_tail(tmp_path: Path) -> None:
    error = fails(job_for(tmp_path, "exit1")[0])
    assert "the SDK adapter exited 1" in error.message
    assert "the adapter broke" in error.message


def test_a_non_zero_exit_fails_even_after_results(tmp_path: Path) -> None:
    error = fails(job_for(tmp_path, "results-then-exit3")[0])
    assert "exited 3" in error.message


def test_an_adapter_that_never_calls_back_fails(tmp_path: Path) -> None:
    job, _ = job_for(tmp_path, "silent")
    error = fails(job)
    assert "exited 0 with no callback at all" in error.message
    assert "report_results" in (error.hint or "")
    assert not (Path(job.output_dir) / ".secrets").exists()


def test_a_failed_report_fails_the_unit_and_stops_the_adapter(tmp_path: Path) -> None:
    job, env = job_for(tmp_path, "failed")
    started = time.monotonic()
    error = fails(job)
    assert error.message == "the adapter reported `failed`: dataset missing (E1)"
    assert time.monotonic() - started < 30  # not the adapter's 60 s sleep
    assert gone(int((env / "pid").read_text()))


def test_a_malformed_event_is_answered_400_and_fails_the_unit(tmp_path: Path) -> None:
    job, env = job_for(tmp_path, "malformed")
    error = fails(job)
    assert "answered 400" in error.message and "status must be one of" in error.message
    assert (env / "answers").read_text().split() == ["204", "400"]
    assert gone(int((env / "pid").read_text()))


def test_an_event_after_the_results_is_answered_409_and_fails_the_unit(tmp_path: Path) -> None:
    job, env = job_for(tmp_path, "twice")
    error = fails(job)
    assert "answered 409" in error.message
    assert (env / "answers").read_text().split() == ["204", "204", "409"]
    lines = (Path(job.output_dir) / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == [204, 204, 409]


def test_a_hanging_adapter_times_out_and_is_stopped(tmp_path: Path) -> None:
    job, env = job_for(tmp_path, "hang", timeout=2)
    error = fails(job)
    assert error.message == "the SDK adapter timed out after 2 s"
    assert gone(int((env / "pid").read_text()))
    assert not (Path(job.output_dir) / ".secrets").exists()


def test_the_adapter_kind_is_registered_and_needs_its_environment(tmp_path: Path) -> None:
    assert isinstance(load_adapter("evalhub-sdk"), EvalhubSdkAdapter)
    job = framework_job(tmp_path, MODEL, PROVIDER, EVALUATION)  # no environment
    error = fails(job)
    assert "managed environment" in error.message


def test_the_route_serves_only_the_events_of_its_job_and_only_on_loopback() -> None:
    def post(url: str, body: bytes) -> int:
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    event = {"benchmark_status_event": {"provider_id": "p", "id": "b", "status": "running"}}
    with serve(Target("j1", "p", "b")) as (url, route):
        assert url.startswith("http://127.0.0.1:")
        events = f"{url}/api/v1/evaluations/jobs/j1/events"
        assert post(events, json.dumps(event).encode()) == 204
        assert post(f"{url}/api/v1/evaluations/jobs/j1", b"{}") == 404  # not the events route
        assert post(events.replace("j1", "j2"), json.dumps(event).encode()) == 404
        with pytest.raises(urllib.error.HTTPError) as got:
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=5)
        assert got.value.code == 404
        got.value.close()
        assert route.new_events() == [event["benchmark_status_event"]]
        assert route.new_events() == []  # each event handed out once
    with pytest.raises(OSError):  # gone once the unit ends
        urllib.request.urlopen(events, json.dumps(event).encode(), timeout=2)
