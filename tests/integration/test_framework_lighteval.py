"""LightEval end to end: `evalhub apply` runs the example custom task (returns_policy_short, three
rows) through `lighteval endpoint litellm` in the lighteval Provider's managed environment,
offline, against the real local model (SmolLM2-135M-Instruct, chat endpoint), and records the
parsed metrics in MLflow; an immediate second apply makes no request. Then the failures: an
unreachable endpoint and a completions-only Model end as failed units with their reasons.
The environment is built on first use (about 6 minutes, cold)."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO, run_cli
from tests.live import counting_proxy
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "lighteval-test-key-5b0c1d2e3f"  # must reach the server only, never the store

SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: chat}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: smollm2-135m, api_key_env: EVALHUB_TEST_LIGHTEVAL_KEY}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{temperature: 0, max_tokens: 24, timeout_seconds: 120}}
---
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: dead}}
spec:
  endpoint: {{url: "http://127.0.0.1:9/v1", api: chat, served_name: smollm2-135m}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{timeout_seconds: 5}}
---
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: completions}}
spec:
  endpoint: {{url: "{url}", api: completions, served_name: smollm2-135m}}
  revision: smollm2-135m-instruct-q4_1
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: quality}}
spec:
  model: chat
  benchmarks:
    - {{provider: lighteval, benchmark: returns_policy_short, name: short, params: {{limit: 3}}}}
  params: {{seed: 1}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: unreachable}}
spec:
  model: dead
  benchmarks:
    - {{provider: lighteval-impatient, benchmark: returns_policy_short, name: short, params: {{limit: 2}}}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: on-completions}}
spec:
  model: completions
  benchmarks:
    - {{provider: lighteval, benchmark: returns_policy_short, name: short, params: {{limit: 2}}}}
"""


def make_repo(root: Path, url: str) -> Path:
    specs = root / "evals"
    (specs / "providers").mkdir(parents=True)
    # Exactly the example Provider (its requirements, so the tests share its environment), and
    # the same without retries, for the unreachable endpoint.
    example = (REPO / "evals" / "providers" / "lighteval.yaml").read_text()
    (specs / "providers" / "lighteval.yaml").write_text(example)
    impatient = example.replace("name: lighteval\n", "name: lighteval-impatient\n", 1)
    impatient = impatient.replace(
        "  adapter: lighteval\n", "  adapter: lighteval\n  config: {max_retries: 0}\n", 1
    )
    assert "lighteval-impatient" in impatient and "max_retries" in impatient
    (specs / "providers" / "impatient.yaml").write_text(impatient)
    shutil.copytree(REPO / "evals" / "lighteval-tasks", specs / "lighteval-tasks")
    (specs / "specs.yaml").write_text(SPECS.format(url=url))
    (root / "evalhub.yaml").write_text("specs: [evals]\nexecutors: {concurrency: 2}\n")
    return root


def leaks(root: Path, secret: str) -> list[Path]:
    state = root / ".evalhub"
    return [p for p in state.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_apply_runs_a_lighteval_custom_task_on_the_real_model(
    live_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALHUB_TEST_LIGHTEVAL_KEY", KEY)
    port = urlsplit(live_model).port
    assert port is not None
    with counting_proxy(port) as (url, counter):
        root = make_repo(tmp_path, url)
        result = run_cli("apply", "--yes", "-e", "quality", cwd=root, timeout=2400)
        assert "Traceback" not in result.output
        assert result.code == 0, result.output
        assert [(n, s) for n, _, s in unit_runs(root)] == [("quality/short", "FINISHED")]
        assert counter.generations == 3  # limit 3: one chat request per row, none retried
        assert all(p.endswith("/chat/completions") for p in counter.paths if "models" not in p)

        run = recorded_units(root)["quality/short"]
        assert run.tags["evalhub.status"] == "succeeded"
        assert run.tags["evalhub.framework_version"] == "0.13.0"
        assert run.metrics["samples"] == 3
        # em is the fraction of exact matches among the samples in the kept per-sample details
        details = run.artifacts["details/returns_policy_short_0.jsonl"].read_text().splitlines()
        matches = [float(json.loads(line)["metric"]["em"]) for line in details]
        assert len(matches) == 3 and set(matches) <= {0.0, 1.0}
        assert run.metrics["em"] == pytest.approx(sum(matches) / len(matches))
        assert run.metrics["em_stderr"] == pytest.approx(
            statistics.stdev(matches) / math.sqrt(len(matches))
        )
        assert run.metrics["score"] == run.metrics["em"]
        assert {
            "results.json",
            "details/returns_policy_short_0.jsonl",
            "details/returns_policy_short_0.parquet",
            "model_config.yaml",
            "lighteval_config.json",
            "lighteval.log",
        } <= run.artifacts.keys()
        assert leaks(root, KEY) == []

        # An immediate second apply runs nothing and asks the model nothing.
        again = run_cli("apply", "--yes", "-e", "quality", cwd=root, timeout=600)
        assert again.code == 0 and "No changes." in again.output, again.output
        assert counter.generations == 3
        assert len(unit_runs(root)) == 1


def test_unreachable_endpoint_and_completions_model_fail_with_reasons(
    live_model: str, tmp_path: Path
) -> None:
    root = make_repo(tmp_path, live_model)
    result = run_cli(
        "apply", "--yes", "-e", "unreachable", "-e", "on-completions", cwd=root, timeout=2400
    )
    assert "Traceback" not in result.output
    assert result.code == 1, result.output
    assert [(n, s) for n, _, s in unit_runs(root)] == [
        ("on-completions/short", "FAILED"),
        ("unreachable/short", "FAILED"),
    ]
    runs = recorded_units(root)
    dead = runs["unreachable/short"].tags["evalhub.error"]
    assert "request to the model failed after every attempt" in dead
    assert "Connection error" in dead
    chat_only = runs["on-completions/short"].tags["evalhub.error"]
    assert "sends chat requests only" in chat_only and "api: chat" in chat_only
