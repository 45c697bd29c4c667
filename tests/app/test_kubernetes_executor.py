"""`evalhub apply` with `execution: {executor: kubernetes}`, through the real `kubernetes` client
over HTTP to the fake API server of tests/k8s_fake.py (schemas, RBAC, Kueue, a kubelet running
the unit), against the scripted OpenAI endpoint and the real MLflow (SQLite) store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
    evaluations.write_text(evaluations.read_text() + f"  execution: {execution}\n")


def cluster_for(tmp_path: Path, **options: Any) -> FakeCluster:
    options.setdefault("images", {IMAGE: Image()})
    options.setdefault("secrets", {"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}})
    return FakeCluster(tmp_path / "cluster", **options)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with fake_cluster(
        tmp_path / "cluster",
        images={IMAGE: Image()},
        secrets={"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}},
    ) as running:
        yield running


def apply(root: Path, *args: str) -> tuple[int, str]:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=300)
    output = result.stdout + "\n" + result.stderr
    assert "Traceback" not in output, output
    return result.code, output


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
        remote = make_project(tmp_path / "remote", url)
        on_kubernetes(remote)
        cluster.kubeconfig(remote / "kubeconfig.yaml")
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


def test_a_result_recorded_locally_is_reused_on_kubernetes(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        assert apply(root)[0] == 0
        on_kubernetes(root)
        cluster.kubeconfig(root / "kubeconfig.yaml")
        code, output = apply(root)
        assert code == 0 and "No changes." in output, output
        assert script.generations == 5
    assert cluster.requests == []  # nothing to run: the cluster is never asked


def test_a_kueue_quota_of_one_runs_units_one_at_a_time(tmp_path: Path) -> None:
    with (
        fake_openai(Script(answer=answer)) as (url, _),
        fake_cluster(
            tmp_path / "cluster",
            images={IMAGE: Image()},
            secrets={"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}},
            quota=1,
        ) as cluster,
    ):
        root = make_project(tmp_path / "p", url)
        on_kubernetes(root, queue="evalhub")
        cluster.kubeconfig(root / "kubeconfig.yaml")
        code, output = apply(root)
        assert code == 0, output
    assert cluster.admitted_at_once == 1
    assert all(
        j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "evalhub"
        for j in cluster.jobs.values()
    )
    assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]
    assert "queued" in output


def test_failures_become_failed_units_with_their_reason(tmp_path: Path) -> None:
    oom = "registry.example/oom@sha256:" + "c" * 64
    missing = "registry.example/missing@sha256:" + "d" * 64
    with (
        fake_openai(Script(answer=answer)) as (url, _),
        fake_cluster(
            tmp_path / "cluster",
            images={IMAGE: Image(), oom: Image(oom=True)},
            secrets={"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}},
        ) as cluster,
    ):
        root = make_project(tmp_path / "p", url)
        on_kubernetes(root, settings=SETTINGS.replace(IMAGE, oom))
        cluster.kubeconfig(root / "kubeconfig.yaml")
        _, output = apply(root)
        assert "killed for running out of memory (OOMKilled)" in output, output
        assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]
        # The next apply retries them; a missing image says so, with the image.
        on_kubernetes(root, settings=SETTINGS.replace(IMAGE, missing))
        _, output = apply(root)
        assert "cannot pull its image (ErrImagePull" in output, output
        assert missing in output
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
        root = make_project(tmp_path / "p", url)
        on_kubernetes(root)
        cluster.kubeconfig(root / "kubeconfig.yaml")
        _, output = apply(root)
        assert script.generations == 0
    assert 'cannot create resource "jobs" in API group "batch"' in output, output
    assert "deploy/kubernetes/rbac.yaml" in output
    assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]


def test_a_conflict_reattaches_and_a_410_relists_and_a_500_fails_one_unit(tmp_path: Path) -> None:
    with (
        fake_openai(Script(answer=answer)) as (url, script),
        fake_cluster(
            tmp_path / "cluster",
            images={IMAGE: Image()},
            secrets={"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}},
        ) as cluster,
    ):
        root = make_project(tmp_path / "p", url)
        on_kubernetes(root)
        cluster.kubeconfig(root / "kubeconfig.yaml")
        cluster.faults.append(Fault("POST", "/jobs$", 500))
        code, output = apply(root)
        assert "the API server failed to create Job" in output and "500" in output, output
        runs = unit_runs(root)
        assert sorted(s for _, _, s in runs) == ["FAILED", "FINISHED"]
        # The failed one again, while the watch history is compacted: 410 Gone, then re-list.
        cluster.compact()
        code, output = apply(root)
        assert code == 0, output
        assert sorted(s for _, _, s in unit_runs(root)) == ["FAILED", "FINISHED", "FINISHED"]
    assert script.generations in (5, 5 + 3, 5 + 2)


def test_interrupt_deletes_the_jobs_it_created(tmp_path: Path) -> None:
    def slow(prompt: str) -> str:
        time.sleep(2.0)
        return answer(prompt)

    with (
        fake_openai(Script(answer=slow)) as (url, script),
        fake_cluster(
            tmp_path / "cluster",
            images={IMAGE: Image()},
            secrets={"evalhub/model-keys": {"EVALHUB_TEST_API_KEY": SECRET}},
        ) as cluster,
    ):
        root = make_project(tmp_path / "p", url)
        on_kubernetes(root)
        cluster.kubeconfig(root / "kubeconfig.yaml")
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes"],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        cluster.wait_for(lambda: script.generations > 0 or len(cluster.created_jobs) == 2)
        cluster.wait_for(lambda: len(script.requests) > 0)
        os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
        assert proc.returncode == 130, output
        assert "Traceback" not in output
        assert cluster.jobs == {} and cluster.configmaps == {}  # nothing left behind
        cluster.wait_for(lambda: cluster.running_processes() == 0)
    assert not any(s == "FINISHED" for _, _, s in unit_runs(root))
