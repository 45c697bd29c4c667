"""`evalhub apply` with `execution: {executor: kubernetes}`, through the real `kubernetes` client
over HTTP to the fake API server of tests/k8s_fake.py (schemas, RBAC, Kueue, a kubelet running
the unit), against the scripted OpenAI endpoint and the real MLflow (SQLite) store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.k8s_fake import FakeCluster, Fault, Image, fake_cluster
from tests.project import answer, make_project, recorded_units, unit_runs

SECRET = "sk-evalhub-k8s-" + "q" * 24
IMAGE = "registry.example/evalhub-runner@sha256:" + "b" * 64
SETTINGS = f"""specs: [evals]
executors:
  concurrency: 2
  kubernetes:
    kubeconfig: kubeconfig.yaml
    namespace: evalhub
    image: "{IMAGE}"
    api_key_secret: model-keys
    service_account: evalhub-runner
"""


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)


def on_kubernetes(root: Path, settings: str = SETTINGS, queue: str | None = None) -> None:
    (root / "evalhub.yaml").write_text(settings)
    evaluations = root / "evals" / "evaluations.yaml"
    execution = "{executor: kubernetes" + (f", queue: {queue}" if queue else "") + "}"
    text = evaluations.read_text().split("  execution:")[0]
    evaluations.write_text(text + f"  execution: {execution}\n")


def cluster_at(tmp_path: Path, **options: Any) -> contextlib.AbstractContextManager[FakeCluster]:
    """A fake cluster with the runner image and the Secret holding the model's key."""
    options.setdefault("images", {IMAGE: Image()})
    options.setdefault("secrets", {"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}})
    return fake_cluster(tmp_path / "cluster", **options)


def project_on(cluster: FakeCluster, root: Path, url: str, **changes: Any) -> Path:
    """The example project at `root`, its evaluation on `cluster`."""
    make_project(root, url)
    on_kubernetes(root, **changes)
    cluster.kubeconfig(root / "kubeconfig.yaml")
    return root


def held(release: threading.Event) -> Callable[[str], str]:
    """The example answers, each once `release` is set (a unit that is still running)."""

    def answer_when_released(prompt: str) -> str:
        release.wait(60)
        return answer(prompt)

    return answer_when_released


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with cluster_at(tmp_path) as running:
        yield running


def apply(root: Path, *args: str) -> tuple[int, str]:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=300)
    output = result.stdout + "\n" + result.stderr
    assert "Traceback" not in output, output
    return result.code, " ".join(output.split())  # unwrapped: messages are matched whole


def scores(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that do not depend on timing."""
    return {k: v for k, v in metrics.items() if "latency" not in k and "duration" not in k}


def fingerprints(root: Path) -> dict[str, tuple[str, str]]:
    return {name: (fp, status) for name, fp, status in unit_runs(root)}


def test_units_run_as_jobs_with_the_same_identity_and_results_as_locally(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        local = make_project(tmp_path / "local", url)
        assert apply(local)[0] == 0
        remote = project_on(cluster, tmp_path / "remote", url)
        code, output = apply(remote)
        assert code == 0, output
        assert script.generations == 10  # 5 rows locally, 5 in the pods
    assert cluster.invalid == []
    assert len(cluster.created_jobs) == 2
    assert fingerprints(remote) == fingerprints(local)  # identity does not depend on executor
    here, there = recorded_units(local), recorded_units(remote)
    assert set(there) == {"quality/refusals", "quality/returns-qa"}
    for name, unit in there.items():
        assert unit.status == "FINISHED"
        assert scores(unit.metrics) == scores(here[name].metrics) != {}
        # The raw output came back from the pod and was recorded like a local unit's.
        assert set(unit.artifacts) == set(here[name].artifacts) != set()
    # The API key reached the unit (the endpoint saw it) only through the Secret: no request
    # evalhub sent to the API server holds it.
    assert script.headers[-1]["Authorization"] == f"Bearer {SECRET}"
    assert not any(SECRET.encode() in body for body in cluster.bodies)
    # Recorded once: the Jobs are marked, and a second apply has nothing to do.
    assert all(
        j["metadata"]["annotations"]["evalhub.dev/recorded"] == "true"
        for j in cluster.jobs.values()
    )
    code, output = apply(remote)
    assert code == 0 and "No changes." in output
    assert len(cluster.created_jobs) == 2
    # A result recorded by the local executor is reused on Kubernetes: the cluster is not asked.
    asked = len(cluster.requests)
    on_kubernetes(local)
    cluster.kubeconfig(local / "kubeconfig.yaml")
    code, output = apply(local)
    assert code == 0 and "No changes." in output, output
    assert len(cluster.requests) == asked


def test_a_kueue_quota_of_one_runs_units_one_at_a_time(tmp_path: Path) -> None:
    release = threading.Event()
    with (
        fake_openai(Script(answer=held(release))) as (url, _),
        cluster_at(tmp_path, quota=1) as cluster,
    ):
        root = project_on(cluster, tmp_path / "p", url, queue="evalhub")
        models = root / "evals" / "models.yaml"
        models.write_text(models.read_text().replace("timeout_seconds: 20", "timeout_seconds: 90"))

        def release_once_kueue_was_asked() -> None:
            # The first unit runs until the executor has asked Kueue why the second waits.
            cluster.wait_for(lambda: any("/workloads" in p for _, p in cluster.requests), 120)
            release.set()

        threading.Thread(target=release_once_kueue_was_asked, daemon=True).start()
        code, output = apply(root)
        release.set()
        assert code == 0, output
    assert cluster.admitted_at_once == 1
    assert all(
        j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "evalhub"
        for j in cluster.jobs.values()
    )
    assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]
    assert "queued: waiting for Kueue to admit the Job (Pending: couldn't assign flavors" in output


def test_failures_become_failed_units_with_their_reason(tmp_path: Path) -> None:
    oom = "registry.example/oom@sha256:" + "c" * 64
    missing = "registry.example/missing@sha256:" + "d" * 64
    with (
        fake_openai(Script(answer=answer)) as (url, _),
        cluster_at(tmp_path, images={IMAGE: Image(), oom: Image(oom=True)}) as cluster,
    ):
        root = project_on(cluster, tmp_path / "p", url, settings=SETTINGS.replace(IMAGE, oom))
        _, output = apply(root)
        assert "killed for running out of memory (OOMKilled)" in output, output
        assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]
        # The next apply retries them; a missing image says so, with the image.
        on_kubernetes(root, settings=SETTINGS.replace(IMAGE, missing))
        _, output = apply(root)
        assert "cannot pull its image (ErrImagePull" in output, output
        assert "registry.example/missing@sha256:" in output
        # Both attempts left Jobs named by attempt, never reusing a name.
        assert len(set(cluster.created_jobs)) == 4
    assert cluster.invalid == []


def test_rbac_refusal_names_the_missing_permission(tmp_path: Path) -> None:
    role = tmp_path / "role.yaml"
    text = (Path(__file__).resolve().parents[2] / "deploy/kubernetes/rbac.yaml").read_text()
    role.write_text(
        text.replace(
            'verbs: ["create", "get", "list", "watch", "patch", "delete"]',
            'verbs: ["get", "list", "watch", "patch", "delete"]',
        )
    )
    with (
        fake_openai(Script(answer=answer)) as (url, script),
        fake_cluster(tmp_path / "cluster", images={IMAGE: Image()}, role=role) as cluster,
    ):
        root = project_on(cluster, tmp_path / "p", url)
        _, output = apply(root)
        assert script.generations == 0
    assert 'cannot create resource "jobs" in API group "batch"' in output, output
    assert "deploy/kubernetes/rbac.yaml" in output
    assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]


def test_a_500_fails_one_unit_and_the_next_apply_runs_it(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = project_on(cluster, tmp_path / "p", url)
        cluster.faults.append(Fault("POST", "/jobs$", 500))
        code, output = apply(root)
        assert code != 0
        assert "the API server failed to create Job" in output and "500" in output, output
        assert sorted(s for _, _, s in unit_runs(root)) == ["FAILED", "FINISHED"]
        code, output = apply(root)
        assert code == 0, output
        assert sorted(s for _, _, s in unit_runs(root)) == ["FAILED", "FINISHED", "FINISHED"]
        assert script.generations == 5  # each unit ran once
    assert len(cluster.created_jobs) == 2


def test_410_gone_relists_and_goes_on(tmp_path: Path, cluster: FakeCluster) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = project_on(cluster, tmp_path / "p", url)
        # Hold the units until a watch is open, so the executor must follow them by watching.
        script.answer = lambda prompt: (
            cluster.wait_for(lambda: cluster.gone_sent > 0),
            answer(prompt),
        )[1]
        cluster.expire_next_watch = True
        code, output = apply(root)
        assert code == 0, output
    assert cluster.gone_sent == 1
    lists = [
        p
        for m, p in cluster.requests
        if m == "GET"
        and p.startswith("/apis/batch/v1/namespaces/evalhub/jobs?")
        and "watch=true" not in p
    ]
    assert len(lists) >= 3  # adoption, the first list, and the re-list after 410
    assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]


def test_409_from_a_concurrent_apply_reattaches_instead_of_running_twice(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    other: list[str] = []

    def concurrent_apply(method: str, path: str, body: bytes) -> None:
        # Another apply creates the same Job between our list and our create.
        if method == "POST" and path.endswith("/jobs") and not other:
            document = json.loads(body)
            other.append(document["metadata"]["name"])
            cluster.create("jobs", "evalhub", document)

    with fake_openai(Script(answer=answer)) as (url, script):
        root = project_on(cluster, tmp_path / "p", url)
        cluster.before = concurrent_apply
        code, output = apply(root)
        assert code == 0, output
        assert script.generations == 5  # each unit ran once
    assert len(cluster.created_jobs) == 2 and other[0] in cluster.created_jobs
    assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]


def test_interrupt_deletes_the_jobs_it_created(tmp_path: Path, cluster: FakeCluster) -> None:
    release = threading.Event()
    with fake_openai(Script(answer=held(release))) as (url, script):
        root = project_on(cluster, tmp_path / "p", url)
        proc = start_apply(root)
        # The units run in their pods (held) and the apply watches them.
        cluster.wait_for(lambda: any("watch=true" in p for _, p in cluster.requests))
        assert script.generations > 0
        os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
        assert proc.returncode == 130, output
        assert "Traceback" not in output
        # The API server finishes a DELETE it received even when the client has gone.
        cluster.wait_for(lambda: cluster.jobs == {} and cluster.configmaps == {}, 30)
        deletes = [p for m, p in cluster.requests if m == "DELETE"]
        assert sorted(p.split("?")[0].rsplit("/", 1)[1] for p in deletes) == sorted(
            cluster.created_jobs
        )  # every Job this apply created, nothing left behind
        cluster.wait_for(lambda: cluster.running_processes() == 0)
        release.set()
    assert not any(s == "FINISHED" for _, _, s in unit_runs(root))


def start_apply(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_an_apply_killed_mid_watch_is_reattached_and_nothing_runs_twice(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    release = threading.Event()
    with fake_openai(Script(answer=held(release))) as (url, script):
        root = project_on(cluster, tmp_path / "p", url)
        proc = start_apply(root)
        # Both Jobs exist and the apply watches them: kill it without warning.
        cluster.wait_for(lambda: any("watch=true" in p for _, p in cluster.requests))
        proc.kill()
        proc.communicate(timeout=60)
        release.set()
        cluster.wait_for(lambda: len(cluster.jobs) == 2 and cluster.running_processes() == 0)
        code, output = apply(root)
        assert code == 0, output
        assert script.generations == 5  # the units ran once, in the first apply's Jobs
    assert len(cluster.created_jobs) == 2  # re-attached: no new Job
    finished = [n for n, _, s in unit_runs(root) if s == "FINISHED"]
    assert sorted(finished) == ["quality/refusals", "quality/returns-qa"]  # recorded once each


def test_a_dead_api_server_fails_the_units_and_the_next_apply_collects_them(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    release = threading.Event()
    with fake_openai(Script(answer=held(release))) as (url, script):
        root = project_on(cluster, tmp_path / "p", url)
        proc = start_apply(root)
        cluster.wait_for(lambda: any("watch=true" in p for _, p in cluster.requests))
        port = cluster.port
        cluster.stop_api()
        release.set()  # the units finish while the API server is down
        output = " ".join(proc.communicate(timeout=120)[0].split())
        assert proc.returncode != 0 and "Traceback" not in output
        assert f"the Kubernetes API server at http://127.0.0.1:{port} is unreachable" in output, (
            output
        )
        assert "the next apply collects its result" in output
        first = output
        cluster.wait_for(lambda: cluster.running_processes() == 0)
        cluster.start(port)  # back
        code, output = apply(root)
        assert code == 0, output
        assert script.generations == 5
    assert len(cluster.created_jobs) == 2
    assert sorted(s for _, _, s in unit_runs(root)) == [
        "FAILED",
        "FAILED",
        "FINISHED",
        "FINISHED",
    ], (first, unit_runs(root))


def test_a_unit_past_its_time_limit_fails_with_deadline_exceeded(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    release = threading.Event()
    with fake_openai(Script(answer=held(release))) as (url, _):
        root = project_on(cluster, tmp_path / "p", url)
        evaluations = root / "evals" / "evaluations.yaml"
        text = evaluations.read_text().replace(
            "{executor: kubernetes}", "{executor: kubernetes, timeout_seconds: 2}"
        )
        evaluations.write_text(text)
        code, output = apply(root)
        release.set()
    assert code != 0
    assert output.count("timed out after 2 s (the Job's activeDeadlineSeconds)") == 2, output
    assert all(j["spec"]["activeDeadlineSeconds"] == 2 for j in cluster.jobs.values())
    assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]
    cluster.wait_for(lambda: cluster.running_processes() == 0)  # the kubelet stopped them
