"""End to end on the real model: SmolLM2-135M-Instruct on llama-cpp-python's server, the built-in
evaluator and lm-evaluation-harness (generate_until and multiple_choice) in its managed
environment, a real MLflow store. Requests are counted at a proxy in front of the server.

Needs `scripts/model_server.py setup` (make test and .ci/run do it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.live import counting_proxy, free_port, model_server, tokenizer_dir
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: chat}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: smollm2-135m}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{temperature: 0, max_tokens: 48, timeout_seconds: 120}}
---
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: completions}}
spec:
  endpoint: {{url: "{url}", api: completions, served_name: smollm2-135m}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{temperature: 0, max_tokens: 48, timeout_seconds: 120}}
  tokenizer: {{path_env: SUPPORT_ASSISTANT_TOKENIZER}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: builtin}}
spec:
  adapter: builtin
  benchmarks:
    - {{id: returns-qa, primary_metric: contains, dataset: datasets/returns_policy_qa.jsonl}}
    - {{id: refusals, primary_metric: refusal, dataset: datasets/refusals.jsonl}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: lm-eval}}
spec:
  adapter: lm-eval
  version: 0.4.13
  requirements: ["lm-eval[api]==0.4.13", "transformers"]
  benchmarks:
    - {{id: returns_policy_gen, primary_metric: exact_match, files: [lm-eval-tasks/returns_policy_gen]}}
    - {{id: returns_policy_mc, primary_metric: acc, files: [lm-eval-tasks/returns_policy_mc]}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: support}}
spec:
  model: chat
  benchmarks:
    - {{provider: builtin, benchmark: returns-qa, weight: 2, params: {{limit: 3}}}}
    - {{provider: builtin, benchmark: refusals, weight: 1, params: {{limit: 3}}}}
  params: {{seed: 1}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: harness}}
spec:
  model: completions
  benchmarks:
    - {{provider: lm-eval, benchmark: returns_policy_gen, name: gen, params: {{limit: 3}}}}
    - {{provider: lm-eval, benchmark: returns_policy_mc, name: mc, params: {{limit: 3}}}}
  params: {{num_fewshot: 0, seed: 1}}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    model_server("start", port)
    try:
        yield port
    finally:
        model_server("stop", port)


@pytest.fixture(autouse=True)
def tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORT_ASSISTANT_TOKENIZER", str(tokenizer_dir()))


def make_repo(root: Path, url: str) -> Path:
    specs = root / "evals"
    shutil.copytree(REPO / "evals" / "datasets", specs / "datasets")
    shutil.copytree(REPO / "evals" / "lm-eval-tasks", specs / "lm-eval-tasks")
    (specs / "specs.yaml").write_text(SPECS.format(url=url))
    (root / "evalhub.yaml").write_text(
        'specs: [evals]\nexclude: ["evals/lm-eval-tasks/**"]\nexecutors: {concurrency: 2}\n'
    )
    return root


def apply(root: Path) -> tuple[int, str]:
    result = run_cli("apply", "--yes", cwd=root, timeout=1200)
    output = result.stdout + "\n\n" + result.stderr
    assert "Traceback" not in output
    return result.code, output


def finished(root: Path) -> list[str]:
    return sorted(n for n, _, s in unit_runs(root) if s == "FINISHED")


def test_apply_on_the_real_model(server: int, tmp_path: Path) -> None:
    with counting_proxy(server) as (url, counter):
        root = make_repo(tmp_path, url)
        code, output = apply(root)
        assert code == 0, output
        assert finished(root) == [
            "harness/gen",
            "harness/mc",
            "support/refusals",
            "support/returns-qa",
        ]
        first = counter.generations
        assert first >= 6 + 3  # builtin rows, lm-eval requests on top

        # An immediate second apply makes zero model requests.
        code, output = apply(root)
        assert code == 0 and "No changes." in output
        assert counter.generations == first

        # Changing one benchmark's params runs exactly that unit.
        specs = root / "evals" / "specs.yaml"
        specs.write_text(
            specs.read_text().replace(
                "benchmark: refusals, weight: 1, params: {limit: 3}",
                "benchmark: refusals, weight: 1, params: {limit: 2}",
            )
        )
        code, output = apply(root)
        assert code == 0, output
        assert counter.generations - first == 2
        assert finished(root).count("support/refusals") == 2
        assert len(finished(root)) == 5

        # Changing a weight rescores with zero model requests.
        before = counter.generations
        specs.write_text(
            specs.read_text().replace(
                "benchmark: returns-qa, weight: 2", "benchmark: returns-qa, weight: 5"
            )
        )
        code, output = apply(root)
        assert code == 0, output
        assert "rescore" in output
        assert counter.generations == before
        assert len(finished(root)) == 5

    # lm-eval's metrics are the means of its per-sample scores in the kept samples file.
    runs = recorded_units(root)
    for unit, metric, recorded in [
        (
            "harness/gen",
            "exact_match",
            "exact_match/strip",
        ),  # its `strip` filter, as MLflow names it
        ("harness/mc", "acc", "acc"),
    ]:
        run = runs[unit]
        (samples,) = [path for name, path in run.artifacts.items() if name.startswith("samples_")]
        scores = [float(json.loads(line)[metric]) for line in samples.read_text().splitlines()]
        assert len(scores) == run.metrics["samples"] == 3
        assert run.metrics[recorded] == pytest.approx(sum(scores) / len(scores)), unit


def test_killing_the_model_server_mid_apply(tmp_path: Path) -> None:
    port = free_port()
    model_server("start", port)
    try:
        with counting_proxy(port) as (url, counter):
            root = make_repo(tmp_path, url)
            specs = root / "evals" / "specs.yaml"
            # builtin only, more rows, one at a time: a window to kill the server in
            specs.write_text(
                specs.read_text().replace(
                    "params: {limit: 3}}", "params: {limit: 8, max_retries: 1}}"
                )
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes", "-e", "support"],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            deadline = time.monotonic() + 300
            while counter.generations < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            model_server("stop", port)
            output = proc.communicate(timeout=600)[0]
            assert proc.returncode == 1, output
            assert "Traceback" not in output
            assert "unit(s) failed" in output
            model_server("start", port)
            code, output = apply(root)
            assert code == 0, output
            code, output = apply(root)
            assert code == 0 and "No changes." in output
        done = [n for n in finished(root) if n.startswith("support/")]
        assert done == ["support/refusals", "support/returns-qa"]  # each recorded exactly once
    finally:
        model_server("stop", port)
