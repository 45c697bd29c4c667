"""GuideLLM end to end: `evalhub apply` runs GuideLLM 0.8.1 in its managed environment against the
real local model (SmolLM2-135M on llama-cpp-python), offline, and MLflow records its latency
metrics. The environment (torch CPU + guidellm, ~1.5 GB) is built by the first apply."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: assistant}}
spec:
  endpoint: {{url: "{url}", api: completions, served_name: smollm2-135m}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{temperature: 0, max_tokens: 48, timeout_seconds: 120}}
  tokenizer: {{path_env: SUPPORT_ASSISTANT_TOKENIZER}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: guidellm}}
spec:
  adapter: guidellm
  version: 0.8.1
  requirements: ["torch==2.13.0", "guidellm==0.8.1"]
  benchmarks:
    - id: synchronous-latency
      primary_metric: request_latency_p95_ms
      direction: lower
      scale: {{min: 0, max: 60000}}
      params: {{profile: synchronous, max_requests: 3, prompt_tokens: 16, output_tokens: 8}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: latency}}
spec:
  model: assistant
  benchmarks:
    - {{provider: guidellm, benchmark: synchronous-latency, name: p95}}
  params: {{seed: 7}}
"""


def test_guidellm_latency_on_the_real_model(
    live_model: str, live_tokenizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORT_ASSISTANT_TOKENIZER", str(live_tokenizer))
    root = tmp_path
    (root / "evals").mkdir()
    (root / "evals" / "specs.yaml").write_text(SPECS.format(url=live_model))
    (root / "evalhub.yaml").write_text("specs: [evals]\n")

    result = run_cli("apply", "--yes", cwd=root, timeout=2400)
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    assert [(name, status) for name, _, status in unit_runs(root)] == [("latency/p95", "FINISHED")]

    run = recorded_units(root)["latency/p95"]
    recorded = run.metrics
    # GuideLLM 0.8.1's scheduler now and then ends a max_requests run one request early on a
    # loaded machine (seen in CI: 2 of 3 recorded, none errored): what it measured is recorded.
    assert 2 <= recorded["requests_successful"] <= 3
    assert recorded["requests_errored"] == 0
    assert recorded["requests_total"] == (
        recorded["requests_successful"] + recorded["requests_incomplete"]
    )
    assert recorded["prompt_tokens_mean"] == pytest.approx(16, abs=2)
    assert run.tags["evalhub.framework_version"] == "0.8.1"

    # What was recorded is what GuideLLM measured, request by request, in its kept report.
    report = run.artifacts["benchmarks.json"]
    requests = json.loads(report.read_text())["benchmarks"][-1]["requests"]["successful"]
    assert len(requests) == recorded["requests_successful"]  # every request kept

    def mean(field: str) -> float:
        return statistics.fmean(float(r[field]) for r in requests)

    latencies_ms = sorted(1000 * r["request_latency"] for r in requests)
    assert recorded["request_latency_mean_ms"] == pytest.approx(1000 * mean("request_latency"))
    for stat in ("median", "p95", "p99"):
        value = recorded[f"request_latency_{stat}_ms"]
        assert latencies_ms[0] - 1e-6 <= value <= latencies_ms[-1] + 1e-6, stat
    assert recorded["ttft_mean_ms"] == pytest.approx(mean("time_to_first_token_ms"))
    assert recorded["output_tokens_mean"] == pytest.approx(mean("output_tokens"))
    assert recorded["prompt_tokens_mean"] == pytest.approx(mean("prompt_tokens"))
    # a request's first token comes before its end
    assert all(r["time_to_first_token_ms"] <= 1000 * r["request_latency"] for r in requests)

    # An immediate second apply runs nothing.
    again = run_cli("apply", "--yes", cwd=root, timeout=600)
    assert again.code == 0, again.output
    assert "No changes." in again.output
    assert len(unit_runs(root)) == 1


def test_guidellm_on_a_down_endpoint_fails_and_never_writes_the_key(
    live_model: str, live_tokenizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint is down (a closed port): the unit fails with GuideLLM's connection errors,
    not as a 0 ms success, and the API key is in no file the run left."""
    secret = "sk-guidellm-test-" + os.urandom(6).hex()
    monkeypatch.setenv("SUPPORT_ASSISTANT_TOKENIZER", str(live_tokenizer))
    monkeypatch.setenv("GUIDELLM_TEST_KEY", secret)
    root = tmp_path
    (root / "evals").mkdir()
    specs = SPECS.format(url="http://127.0.0.1:9/v1").replace(
        "served_name: smollm2-135m}", "served_name: smollm2-135m, api_key_env: GUIDELLM_TEST_KEY}"
    )
    (root / "evals" / "specs.yaml").write_text(specs)
    (root / "evalhub.yaml").write_text("specs: [evals]\n")

    result = run_cli("apply", "--yes", cwd=root, timeout=2400)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert "GuideLLM requests to http://127.0.0.1:9/v1 failed" in result.output
    assert "ConnectError" in result.output
    for path in (root / ".evalhub").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
