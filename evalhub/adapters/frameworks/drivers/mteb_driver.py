# mypy: ignore-errors
"""Runs one MTEB task built from a local JSONL file, inside the mteb Provider's environment.

    <env>/bin/python mteb_driver.py CONFIG.json RESULT.json

Executed as a script by evalhub's mteb adapter: it imports only mteb, its dependencies and the
standard library, never evalhub. CONFIG (written by the adapter) names the task, its data and the
model; RESULT is always written, with either the scores or {"error", "hint"} for an expected
failure (exit 2). Anything else is a crash: a traceback on stderr and a non-zero exit.

Task types, from JSONL rows:
- STS: {"sentence1", "sentence2", "score"} with min_score <= score <= max_score;
- PairClassification: {"sentence1", "sentence2", "label"} with label 0 or 1;
- Retrieval: {"query", "relevant": [passage, ...], "irrelevant": [passage, ...]?}; the corpus is
  every distinct passage of the file.
Models: a sentence-transformers directory (given, or shipped by an installed package), or an
OpenAI-compatible /v1/embeddings endpoint (the API key comes from the environment variable the
config names).
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # driver_common, when run as a script
from driver_common import DriverError, package_model_dir

FRAMEWORK = "mteb"

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
TASK_TYPES = ("STS", "PairClassification", "Retrieval")
MAIN_SCORES = {
    "STS": "cosine_spearman",
    "PairClassification": "max_ap",
    "Retrieval": "ndcg_at_10",
}


# -- data ---------------------------------------------------------------------------------------


def read_rows(path: str, limit: int | None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of the JSONL file, the first `limit` rows when given."""
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DriverError(f"cannot read the dataset {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DriverError(f"{Path(path).name}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DriverError(f"{Path(path).name}:{number}: a row must be a JSON object")
        rows.append((number, row))
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DriverError(f"the dataset {Path(path).name} has no rows")
    return rows


def _text(row: dict[str, Any], field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DriverError(f"{where}: `{field}` must be a non-empty string")
    return value


def _texts(row: dict[str, Any], field: str, where: str, required: bool) -> list[str]:
    value = row.get(field, [] if not required else None)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (required and not value):
        raise DriverError(f"{where}: `{field}` must be a passage or a non-empty list of them")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise DriverError(f"{where}: every passage in `{field}` must be a non-empty string")
    return value


def sts_data(rows: list[tuple[int, dict[str, Any]]], name: str, low: float, high: float):
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    for number, row in rows:
        where = f"{name}:{number}"
        columns["sentence1"].append(_text(row, "sentence1", where))
        columns["sentence2"].append(_text(row, "sentence2", where))
        score = row.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise DriverError(f"{where}: `score` must be a number")
        if not low <= score <= high:
            raise DriverError(
                f"{where}: score {score} is outside [{low:g}, {high:g}]",
                "set the benchmark's `min_score`/`max_score` params to the dataset's scale",
            )
        columns["score"].append(float(score))
    if len(rows) < 2 or len(set(columns["score"])) < 2:
        raise DriverError(
            f"{name}: an STS task needs at least two rows with different scores "
            "(a correlation is undefined otherwise)"
        )
    return columns


def pair_data(rows: list[tuple[int, dict[str, Any]]], name: str):
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "labels": []}
    for number, row in rows:
        where = f"{name}:{number}"
        columns["sentence1"].append(_text(row, "sentence1", where))
        columns["sentence2"].append(_text(row, "sentence2", where))
        label = row.get("label", row.get("labels"))
        if label not in (0, 1):  # True/False compare equal to 1/0
            raise DriverError(f"{where}: `label` must be 0 or 1")
        columns["labels"].append(int(label))
    if len(set(columns["labels"])) < 2:
        raise DriverError(f"{name}: a PairClassification task needs rows of both labels, 0 and 1")
    return columns


def retrieval_data(rows: list[tuple[int, dict[str, Any]]], name: str):
    queries: list[dict[str, str]] = []
    corpus: dict[str, str] = {}  # passage -> id, in order of appearance
    relevant: dict[str, dict[str, int]] = {}
    for number, row in rows:
        where = f"{name}:{number}"
        query_id = f"q{len(queries)}"
        queries.append({"id": query_id, "text": _text(row, "query", where)})
        relevant[query_id] = {}
        for passage in _texts(row, "relevant", where, required=True):
            doc_id = corpus.setdefault(passage, f"d{len(corpus)}")
            relevant[query_id][doc_id] = 1
        for passage in _texts(row, "irrelevant", where, required=False):
            corpus.setdefault(passage, f"d{len(corpus)}")
    documents = [{"id": doc_id, "text": text} for text, doc_id in corpus.items()]
    return queries, documents, relevant


# -- the task -------------------------------------------------------------------------------------


def build_task(task: dict[str, Any]):
    """An MTEB task object of the configured type, its data loaded from the JSONL file."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.task_metadata import TaskMetadata

    kind = task["type"]
    if kind not in TASK_TYPES:
        raise DriverError(
            f"task_type {kind!r} is not supported", f"use one of {', '.join(TASK_TYPES)}"
        )
    name = task["name"]
    rows = read_rows(task["data"], task.get("limit"))
    label = Path(task["data"]).name
    metadata = TaskMetadata(
        name=name,
        description=task.get("description") or f"{kind} task {name} from {label}",
        type=kind,
        main_score=MAIN_SCORES[kind],
        dataset={"path": f"local/{label}", "revision": task.get("revision") or "local"},
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],  # a label in MTEB's result only
    )
    if kind == "STS":
        from mteb.abstasks.sts import AbsTaskSTS

        low, high = float(task.get("min_score", 0)), float(task.get("max_score", 5))
        if not low < high:
            raise DriverError(f"min_score ({low:g}) must be below max_score ({high:g})")
        columns = sts_data(rows, label, low, high)

        class LocalSTS(AbsTaskSTS):
            min_score = low
            max_score = high

            def load_data(self, num_proc=None, **kwargs):
                self.dataset = DatasetDict({"test": Dataset.from_dict(columns)})
                self.data_loaded = True

        LocalSTS.metadata = metadata
        return LocalSTS(), len(rows)
    if kind == "PairClassification":
        from mteb.abstasks.pair_classification import AbsTaskPairClassification

        columns = pair_data(rows, label)

        class LocalPairs(AbsTaskPairClassification):
            def load_data(self, num_proc=None, **kwargs):
                self.dataset = DatasetDict({"test": Dataset.from_dict(columns)})
                self.data_loaded = True

        LocalPairs.metadata = metadata
        return LocalPairs(), len(rows)

    from mteb.abstasks.retrieval import AbsTaskRetrieval

    queries, documents, relevant = retrieval_data(rows, label)
    k_values = tuple(int(k) for k in task.get("k_values") or (1, 3, 5, 10))

    class LocalRetrieval(AbsTaskRetrieval):
        def load_data(self, num_proc=None, **kwargs):
            split = {
                "queries": Dataset.from_list(queries),
                "corpus": Dataset.from_list(documents),
                "relevant_docs": relevant,
                "top_ranked": None,
            }
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    LocalRetrieval.metadata = metadata
    LocalRetrieval.k_values = k_values
    return LocalRetrieval(), len(queries)


# -- the model ------------------------------------------------------------------------------------


def local_model(path: Path, config: dict[str, Any]):
    """A sentence-transformers model from a directory, wrapped for MTEB under evalhub's name."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    if not path.is_dir():
        raise DriverError(f"the model directory {path} does not exist")
    kwargs = {"device": config["device"]} if config.get("device") else {}
    try:
        model = SentenceTransformer(str(path), local_files_only=True, **kwargs)
    except Exception as exc:
        raise DriverError(
            f"cannot load a sentence-transformers model from {path}: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
            "the directory must hold a sentence-transformers model (modules.json, config.json, "
            "weights, tokenizer)",
        ) from None
    wrapper = SentenceTransformerEncoderWrapper(model)
    wrapper.mteb_model_meta = wrapper.mteb_model_meta.model_copy(
        update={"name": f"evalhub/{config['name']}", "revision": config["revision"]}
    )
    return wrapper


class EmbeddingsClient:
    """Batches of texts to an OpenAI-compatible /v1/embeddings endpoint, with bounded retries
    (backoff) on 429, 5xx, timeouts, connection errors and answers that are not embeddings."""

    def __init__(self, config: dict[str, Any], key: str | None, backoff: float = 0.5) -> None:
        self.url = config["url"].rstrip("/") + "/embeddings"
        self.served_name = config["served_name"]
        self.key = key
        self.timeout = float(config.get("timeout") or 60)
        self.attempts = 1 + int(config.get("max_retries", 3))
        self.backoff = backoff
        self.requests = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        body = json.dumps(
            {"model": self.served_name, "input": texts, "encoding_format": "float"}
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(8.0, self.backoff * 2 ** (attempt - 1)))
            self.requests += 1
            request = urllib.request.Request(self.url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = response.read()
            except urllib.error.HTTPError as exc:
                if exc.code in RETRY_STATUS:
                    last = f"HTTP {exc.code}"
                    continue
                text = exc.read().decode("utf-8", "replace")[:200]
                raise DriverError(
                    f"{self.url} answered HTTP {exc.code}: {text}",
                    "check the Model's endpoint url, served_name and api_key_env",
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"cannot connect ({getattr(exc, 'reason', exc)})"
                continue
            try:
                return self.parse(answer, len(texts))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                last = f"answered something that is not an embeddings response ({exc})"
        raise DriverError(
            f"embedding endpoint {self.url} failed after {self.attempts} attempts: {last}",
            "is the embedding server running and healthy?",
        )

    @staticmethod
    def parse(answer: bytes, count: int) -> list[list[float]]:
        data = json.loads(answer)["data"]
        if not isinstance(data, list) or len(data) != count:
            raise ValueError(f"expected {count} embeddings")
        items = sorted(data, key=lambda item: int(item.get("index", 0)))
        vectors = [[float(x) for x in item["embedding"]] for item in items]
        if len({len(v) for v in vectors}) != 1 or not vectors[0]:
            raise ValueError("embeddings of different or zero dimensions")
        if not all(math.isfinite(x) for v in vectors for x in v):
            raise ValueError("non-finite numbers")
        return vectors


def endpoint_model(config: dict[str, Any], batch_size: int):
    """MTEB's encoder protocol over an embeddings endpoint."""
    import os

    import numpy as np
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta, ScoringFunction

    variable = config.get("api_key_variable")
    client = EmbeddingsClient(config, os.environ.get(variable) if variable else None)

    class EndpointEncoder(AbsEncoder):
        def __init__(self) -> None:
            self.client = client
            self.model = None
            self.mteb_model_meta = ModelMeta.create_empty(
                overwrites={
                    "name": f"evalhub/{config['name']}",
                    "revision": config["revision"],
                    "similarity_fn_name": ScoringFunction.COSINE,
                    "modalities": ["text"],
                }
            )

        @property
        def requests(self) -> int:
            return self.client.requests

        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kw):
            texts = [text for batch in inputs for text in batch["text"]]
            vectors: list[list[float]] = []
            for start in range(0, len(texts), batch_size):
                vectors.extend(self.client.embed(texts[start : start + batch_size]))
            return np.asarray(vectors, dtype=np.float32)

    return EndpointEncoder()


def build_model(config: dict[str, Any], batch_size: int):
    source = config["source"]
    if source == "endpoint":
        return endpoint_model(config, batch_size), None
    path = (
        Path(config["path"])
        if source == "path"
        else package_model_dir(config["package"], FRAMEWORK)
    )
    return local_model(path, config), str(path)


# -- run ------------------------------------------------------------------------------------------


def find_results(cache: Path, task: str) -> Path | None:
    found = sorted(cache.glob(f"results/*/*/{task}.json"))
    return found[0] if found else None


def run(config: dict[str, Any]) -> dict[str, Any]:
    import mteb
    from mteb.cache import ResultCache

    task, samples = build_task(config["task"])
    batch_size = int(config.get("batch_size") or 32)
    model, model_path = build_model(config["model"], batch_size)
    cache = Path(config["cache_dir"])
    predictions = Path(config["predictions_dir"])
    predictions.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = mteb.evaluate(
        model,
        task,
        cache=ResultCache(cache),
        overwrite_strategy="always",
        prediction_folder=predictions,
        show_progress_bar=False,
        encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
    )
    if not result.task_results:
        raise DriverError(f"mteb returned no result for {task.metadata.name}")
    task_result = result.task_results[0]
    results_file = find_results(cache, task.metadata.name)
    return {
        "mteb_version": mteb.__version__,
        "task": task.metadata.name,
        "task_type": task.metadata.type,
        "main_score": task.metadata.main_score,
        "scores": task_result.scores,
        "samples": samples,
        "seconds": time.monotonic() - started,
        "model_path": model_path,
        "requests": getattr(model, "requests", None),
        "results_file": str(results_file) if results_file else None,
        "predictions": sorted(str(p) for p in predictions.glob("*.json")),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: mteb_driver.py CONFIG.json RESULT.json", file=sys.stderr)
        return 64
    config_path, result_path = Path(argv[0]), Path(argv[1])
    config = json.loads(config_path.read_text(encoding="utf-8"))
    try:
        output = run(config)
        code = 0
    except DriverError as exc:
        output = {"error": exc.message, "hint": exc.hint}
        code = 2
    except Exception as exc:  # mteb wraps the encoder's exceptions in its own
        cause = exc
        while cause is not None and not isinstance(cause, DriverError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        output = {"error": cause.message, "hint": cause.hint}
        code = 2
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(output, indent=2, default=str), encoding="utf-8")
    tmp.replace(result_path)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
