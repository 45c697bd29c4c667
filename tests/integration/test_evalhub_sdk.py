"""Adapters written for EvalHub's SDK, run unchanged on both hosts: `evalhub apply` (adapter:
evalhub-sdk) and the real EvalHub server (eval-hub-server 1.0.2, local mode), with the real
`eval-hub-sdk[adapter]==1.0.6` in its managed environment and the real local model. The two
adapters are the example ones (evals/sdk_adapters/): one asks the model returns-policy questions
and scores the answers, one reports a fixed metric. Both hosts report the same metrics."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.environments import EnvironmentStore
from tests.conftest import REPO, run_cli
from tests.live import free_port
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "sk-evalhub-sdk-it-" + "q" * 24
SDK = ["eval-hub-sdk[adapter]==1.0.6"]  # exactly the example Providers' requirements
SERVER = ["eval-hub-server==1.0.2"]
MODEL = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: support-assistant}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: smollm2-135m, api_key_env: SDK_IT_KEY}}
  revision: smollm2-135m-instruct-q4_1
"""
EVALUATION = (REPO / "evals" / "evaluations" / "support-assistant-sdk.yaml").read_text()


def project(root: Path, url: str) -> Path:
    specs = root / "evals"
    for part in ("sdk_adapters", "providers"):
        shutil.copytree(REPO / "evals" / part, specs / part, dirs_exist_ok=True)
    for name in os.listdir(specs / "providers"):
        if name != "sdk.yaml":
            (specs / "providers" / name).unlink()
    (specs / "datasets").mkdir()
    shutil.copy(REPO / "evals" / "datasets" / "returns_policy_qa.jsonl", specs / "datasets")
    (specs / "models.yaml").write_text(MODEL.format(url=url))
    (specs / "evaluation.yaml").write_text(EVALUATION)
    # A package named like the SDK's, where the adapter's module is found: it must not hide the
    # SDK (the repository's roots come after site-packages).
    (specs / "evalhub").mkdir()
    (specs / "evalhub" / "__init__.py").write_text("raise ImportError('shadowed the SDK')\n")
    (root / "evalhub.yaml").write_text("specs: [evals]\n")
    return root


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score(answer: str, row: dict[str, Any]) -> float:
    """The example adapter's rule, restated: an expected string and no forbidden one."""
    text = answer.lower()
    if any(bad.lower() in text for bad in row.get("forbidden", [])):
        return 0.0
    return 1.0 if any(good.lower() in text for good in row["expected"]) else 0.0


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory, live_model: str) -> Iterator[Path]:
    EnvironmentStore().ensure(SDK)
    root = project(tmp_path_factory.mktemp("sdk"), live_model)
    os.environ["SDK_IT_KEY"] = KEY
    try:
        result = run_cli("apply", "--yes", "--no-publish", cwd=root, timeout=1200)
        assert "Traceback" not in result.output
        assert result.code == 0, result.output
        yield root
    finally:
        os.environ.pop("SDK_IT_KEY", None)


def test_apply_runs_sdk_adapters_unchanged_and_records_them(applied: Path) -> None:
    runs = recorded_units(applied)
    fixed = runs["support-assistant-sdk/fixed"]
    qa = runs["support-assistant-sdk/returns-qa-sdk"]
    assert (fixed.status, qa.status) == ("FINISHED", "FINISHED")
    assert fixed.metrics["fixed_score"] == 0.75 and fixed.metrics["overall_score"] == 0.75
    assert fixed.tags["evalhub.framework_version"] == "1.0.6"  # the SDK's, from its env
    rows = jsonl(REPO / "evals" / "datasets" / "returns_policy_qa.jsonl")
    samples = jsonl(qa.artifacts["samples.jsonl"])
    assert [s["id"] for s in samples] == [r["id"] for r in rows[:3]]  # limit 3 = num_examples
    assert [s["score"] for s in samples] == [
        score(s["answer"], r) for s, r in zip(samples, rows, strict=False)
    ]
    assert qa.metrics["contains"] == pytest.approx(sum(s["score"] for s in samples) / 3)
    for run in (fixed, qa):
        assert {"events.jsonl", "adapter.log", "meta/job.json"} <= run.artifacts.keys()
        card = json.loads(run.artifacts["evalhub.env_card.json"].read_text())
        assert card["python_version"].startswith("3.")  # captured by the SDK in its env
        events = jsonl(run.artifacts["events.jsonl"])
        assert {e["status"] for e in events} == {204}
        assert events[-1]["body"]["benchmark_status_event"]["status"] == "completed"
    job = json.loads(qa.artifacts["meta/job.json"].read_text())
    assert job["num_examples"] == 3 and job["parameters"] == {"max_tokens": 64}
    assert job["model"]["auth"]["secret_ref"].startswith("file:///")


def test_the_key_is_nowhere_after_the_run(applied: Path) -> None:
    assert not list(applied.rglob(".secrets"))
    for path in applied.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY.encode() not in (applied / ".evalhub" / "mlflow.db").read_bytes()


def test_a_second_apply_runs_nothing(applied: Path) -> None:
    before = unit_runs(applied)
    os.environ["SDK_IT_KEY"] = KEY
    try:
        result = run_cli("apply", "--yes", "--no-publish", cwd=applied, timeout=300)
    finally:
        os.environ.pop("SDK_IT_KEY", None)
    assert result.code == 0, result.output
    assert "No changes." in result.output
    assert unit_runs(applied) == before


PROVIDER = """\
id: {id}
name: {id}
title: {id}
description: an eval-hub-sdk adapter
tags: [test]
runtime:
  local:
    command: {python} -P {script}
benchmarks:
  - id: {benchmark}
    name: {benchmark}
    category: test
    metrics: [{metric}]
    num_few_shot: 0
    dataset_size: 3
    primary_score: {{metric: {metric}, lower_is_better: false}}
"""


@contextmanager
def evalhub_server(root: Path, providers: dict[str, str]) -> Iterator[str]:
    """The real EvalHub server in local mode on a free loopback port (no sidecar)."""
    binary = EnvironmentStore().ensure(SERVER)
    assert binary is not None
    config = root / "cfg"
    (config / "providers").mkdir(parents=True)
    (config / "collections").mkdir()
    port = free_port()
    (config / "config.yaml").write_text(SERVER_CONFIG.replace("port: 18080", f"port: {port}"))
    for name, text in providers.items():
        (config / "providers" / f"{name}.yaml").write_text(text)
    (root / "run").mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "TMPDIR": str(root)}
    server = subprocess.Popen(
        [str(binary / "bin" / "eval-hub"), "-local", "-configdir", str(config)],
        cwd=root / "run", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        poll(lambda: get(f"{base}/health").get("status") == "healthy", 30)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


# `eval-hub -local -configdir DIR` reads DIR/config.yaml: loopback only, a SQLite file in the
# server's working directory, no OpenTelemetry, no Prometheus listener (upstream binds 0.0.0.0).
SERVER_CONFIG = """\
service: {port: 18080, host: "127.0.0.1", termination_file: "evalhub-termination-log"}
database: {driver: sqlite, url: "file:evalhub.db"}
otel: {enabled: false}
prometheus: {enabled: false}
"""


def get(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except OSError:
        return {}


def poll(done: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_the_same_adapters_under_the_real_evalhub_server_report_the_same_metrics(
    applied: Path, tmp_path: Path, live_model: str
) -> None:
    python = EnvironmentStore().ensure(SDK)
    assert python is not None
    adapters = applied / "evals" / "sdk_adapters"
    providers = {
        "qa": PROVIDER.format(
            id="sdk-returns-qa", benchmark="returns-qa-sdk", metric="contains",
            python=python / "bin" / "python", script=adapters / "returns_qa.py",
        ),
        "fixed": PROVIDER.format(
            id="sdk-fixed", benchmark="fixed", metric="fixed_score",
            python=python / "bin" / "python", script=adapters / "fixed_metric.py",
        ),
    }  # fmt: skip
    request = {
        "name": "sdk-both-hosts",
        "model": {"url": live_model, "name": "smollm2-135m"},
        "benchmarks": [
            {
                "id": "returns-qa-sdk",
                "provider_id": "sdk-returns-qa",
                "parameters": {"num_examples": 3, "max_tokens": 64},
            },
            {"id": "fixed", "provider_id": "sdk-fixed", "parameters": {"value": 0.75}},
        ],
    }
    with evalhub_server(tmp_path, providers) as base:
        submit = urllib.request.Request(
            f"{base}/evaluations/jobs", json.dumps(request).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(submit, timeout=10) as response:
            job_id = json.loads(response.read())["resource"]["id"]
        url = f"{base}/evaluations/jobs/{job_id}"
        poll(lambda: get(url).get("status", {}).get("state") in ("completed", "failed"), 900)
        job = get(url)
    assert job["status"]["state"] == "completed", job
    theirs = {b["id"]: b["metrics"] for b in job["results"]["benchmarks"]}
    ours = recorded_units(applied)
    assert theirs["fixed"] == {
        "fixed_score": ours["support-assistant-sdk/fixed"].metrics["fixed_score"]
    }
    # temperature 0 on the same model server: the same answers, so the same score
    qa = ours["support-assistant-sdk/returns-qa-sdk"].metrics["contains"]
    assert theirs["returns-qa-sdk"] == {"contains": pytest.approx(qa)}


# Adapters written against the real SDK that go wrong in the ways EvalHub leaves pending.
BROKEN = """\
import sys
from evalhub.adapter import (
    DefaultCallbacks, EvaluationResult, FrameworkAdapter, JobResults, JobStatus,
    JobStatusUpdate, MessageInfo,
)

MODE = "{mode}"


class Broken(FrameworkAdapter):
    def run_benchmark_job(self, config, callbacks):
        if MODE == "raises":
            raise RuntimeError("the framework could not load its data")
        if MODE == "failed":
            callbacks.report_status(JobStatusUpdate(
                status=JobStatus.FAILED,
                error_message=MessageInfo(message="model unreachable", message_code="E42"),
            ))
        return JobResults(
            id=config.id, benchmark_id=config.benchmark_id,
            benchmark_index=config.benchmark_index, model_name=config.model.name,
            results=[EvaluationResult(metric_name="m", metric_value=1.0)],
            num_examples_evaluated=1, duration_seconds=0.1,
        )


adapter = Broken()
callbacks = DefaultCallbacks.from_adapter(adapter)
results = adapter.run_benchmark_job(adapter.job_spec, callbacks)
if MODE != "forgets":
    callbacks.report_results(results)
if MODE == "twice":
    callbacks.report_results(results)
"""
BROKEN_PROVIDER = """\
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: {mode}}}
spec:
  adapter: evalhub-sdk
  requirements: ["eval-hub-sdk[adapter]==1.0.6"]
  config: {{module: broken.{mode}}}
  benchmarks: [{{id: b, primary_metric: m}}]
"""
# mode -> what the unit's recorded error says
FAILURES = {
    "raises": "the SDK adapter exited 1: ",
    "forgets": "the SDK adapter exited 0 with no callback at all",
    "failed": "the adapter reported `failed`: model unreachable (E42)",
    "twice": "the adapter sent an event answered 409",
}


def test_real_sdk_adapters_that_go_wrong_fail_their_units_with_the_reason(
    tmp_path: Path, live_model: str
) -> None:
    EnvironmentStore().ensure(SDK)
    root = tmp_path
    specs = root / "evals"
    (specs / "broken").mkdir(parents=True)
    (specs / "models.yaml").write_text(MODEL.format(url=live_model))
    providers = ""
    for mode in FAILURES:
        (specs / "broken" / f"{mode}.py").write_text(BROKEN.format(mode=mode))
        providers += BROKEN_PROVIDER.format(mode=mode)
    (specs / "providers.yaml").write_text(providers)
    entries = ", ".join(f"{{provider: {m}, benchmark: b, name: {m}}}" for m in FAILURES)
    (specs / "evaluation.yaml").write_text(
        "apiVersion: evalhub.dev/v1\nkind: Evaluation\nmetadata: {name: broken}\n"
        f"spec:\n  model: support-assistant\n  benchmarks: [{entries}]\n"
    )
    (root / "evalhub.yaml").write_text("specs: [evals]\n")
    os.environ["SDK_IT_KEY"] = KEY
    try:
        result = run_cli("apply", "--yes", "--no-publish", cwd=root, timeout=600)
    finally:
        os.environ.pop("SDK_IT_KEY", None)
    assert result.code == 1, result.output  # units failed
    assert "Traceback (most recent call last)" not in result.stdout
    runs = recorded_units(root)
    for mode, reason in FAILURES.items():
        run = runs[f"broken/{mode}"]
        assert run.tags["evalhub.status"] == "failed", mode
        assert run.tags["evalhub.error"].startswith(reason), (mode, run.tags["evalhub.error"])
        assert {"events.jsonl", "adapter.log"} <= run.artifacts.keys(), mode
    assert "could not load its data" in runs["broken/raises"].tags["evalhub.error"]
