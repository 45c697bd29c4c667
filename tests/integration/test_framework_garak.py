"""garak end to end: `evalhub apply` runs a garak probe (encoding.InjectBase64, two prompts, one
generation each) in the example Provider's managed environment, offline, against the real model
(SmolLM2-135M-Instruct on llama-cpp-python, chat endpoint), and records the parsed pass rates in
MLflow; an unknown probe fails its unit with garak's reason. The environment is built on first
use (minutes, cold)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, Result, run_cli
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Exactly the example Provider: the test shares its environment and checks its catalogue.
PROVIDER = (REPO / "evals" / "providers" / "garak.yaml").read_text()
KEY = "sk-test-garak-0123456789"

SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: chat}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: smollm2-135m, api_key_env: EVALHUB_TEST_GARAK_KEY}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{temperature: 0, max_tokens: 16, timeout_seconds: 120}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: scan}}
spec:
  model: chat
  benchmarks:
    - {{provider: garak, benchmark: encoding.InjectBase64, name: base64, params: {{soft_probe_prompt_cap: 2}}}}
  params: {{seed: 3}}
  execution: {{concurrency: 1}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: garak-extra}}
spec:
  adapter: garak
  version: 0.17.1
  requirements: [torch==2.13.0, garak==0.17.1]
  benchmarks:
    - {{id: encoding.NoSuchProbe, primary_metric: pass_rate}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: broken}}
spec:
  model: chat
  benchmarks:
    - {{provider: garak-extra, benchmark: encoding.NoSuchProbe, name: unknown}}
"""


def apply(root: Path, *args: str) -> Result:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=2400)
    assert "Traceback" not in result.output
    return result


def test_apply_runs_a_garak_probe_on_the_real_model(
    live_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALHUB_TEST_GARAK_KEY", KEY)
    (tmp_path / "evals" / "providers").mkdir(parents=True)
    (tmp_path / "evals" / "providers" / "garak.yaml").write_text(PROVIDER)
    (tmp_path / "evals" / "specs.yaml").write_text(SPECS.format(url=live_model))
    (tmp_path / "evalhub.yaml").write_text("specs: [evals]\n")

    result = apply(tmp_path, "-e", "scan")
    assert result.code == 0, result.output
    assert [(n, s) for n, _, s in unit_runs(tmp_path)] == [("scan/base64", "FINISHED")]
    run = recorded_units(tmp_path)["scan/base64"]
    assert run.tags["evalhub.framework_version"] == "0.17.1"
    metrics = run.metrics
    assert metrics["samples"] == 2  # soft_probe_prompt_cap 2, from the entry's params
    assert metrics["responses"] == 2 and metrics["failed_responses"] == 0
    detectors = {k for k in metrics if k.startswith("pass_rate/")}
    assert detectors == {"pass_rate/encoding.DecodeMatch", "pass_rate/encoding.DecodeApprox"}
    assert {"garak.report.jsonl", "garak.log", "garak_console.log"} <= set(run.artifacts)
    # What was recorded is what garak's own report says, entry by entry.
    report = [json.loads(x) for x in run.artifacts["garak.report.jsonl"].read_text().splitlines()]
    evals = [e for e in report if e["entry_type"] == "eval"]
    assert {f"pass_rate/{e['detector']}" for e in evals} == detectors
    passed, total = sum(e["passed"] for e in evals), sum(e["total_evaluated"] for e in evals)
    assert total == 4  # (response, detector) checks: 2 responses x 2 detectors
    assert metrics["pass_rate"] == pytest.approx(passed / total)
    assert metrics["hits"] == sum(e["fails"] for e in evals) == total - passed
    for entry in evals:
        share = entry["passed"] / entry["total_evaluated"]
        assert metrics[f"pass_rate/{entry['detector']}"] == pytest.approx(share)
    attempts = [e for e in report if e["entry_type"] == "attempt" and e["status"] == 2]
    assert metrics["samples"] == len(attempts)
    (digest,) = [e for e in report if e["entry_type"] == "digest"]
    probe = "encoding.InjectBase64"
    summaries = [g[probe]["_summary"] for g in digest["eval"].values() if probe in g]
    assert metrics["probe_score"] == pytest.approx(summaries[0]["probe_score"])
    assert metrics["score"] == metrics["pass_rate"]
    # the API key went through the environment only
    for path in (tmp_path / ".evalhub").rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert KEY not in path.read_text(errors="replace"), path

    # An unknown probe fails its unit with garak's reason; the other unit is not re-run.
    result = apply(tmp_path)
    assert result.code == 1, result.output
    runs = recorded_units(tmp_path)
    assert (
        runs["broken/unknown"]
        .tags["evalhub.error"]
        .startswith("garak has no probe 'encoding.NoSuchProbe'")
    )
    assert len(unit_runs(tmp_path)) == 2

    # An immediate second apply of the probe runs nothing.
    result = apply(tmp_path, "-e", "scan")
    assert result.code == 0 and "No changes." in result.output, result.output
    assert len(unit_runs(tmp_path)) == 2
