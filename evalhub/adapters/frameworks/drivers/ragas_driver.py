# mypy: ignore-errors
"""Scores recorded RAG answers with RAGAS metrics, inside the ragas Provider's environment.

    <env>/bin/python ragas_driver.py CONFIG.json RESULT.json

Executed as a script by evalhub's ragas adapter: it imports only ragas, its dependencies and the
standard library, never evalhub. CONFIG (written by the adapter) holds the rows (already in
RAGAS's field names), the metrics (class, options, inputs) and, when a metric needs them, the
judge (an OpenAI-compatible chat endpoint, driven through ragas' `llm_factory`) and the
embeddings (a sentence-transformers directory or package, or an OpenAI-compatible /v1/embeddings
endpoint). API keys come from the environment variables the config names, never from the config.

RESULT is always written: {"ragas_version", "metrics": {name: [{"value", "error", "judge_calls"}
per row]}, "judge_requests"}, or {"error", "hint"} for an expected failure (exit 2): a model that
cannot be loaded, a metric that cannot be set up, a judge or embedding endpoint that is
unreachable or refuses. A row the judge could not grade (an answer that does not parse, a metric
returning NaN) is not a failure here: its value is null with the reason, and the adapter decides.
Anything else is a crash: a traceback on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import math
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # driver_common, when run as a script
from driver_common import DriverError, package_model_dir

FRAMEWORK = "ragas"

NO_KEY = "no-key"  # the OpenAI client insists on a key; servers without auth ignore it
# HTTP statuses that say the endpoint, not the row, is the problem: the unit fails.
FATAL_STATUS = {401, 403, 404, 405}


def log(message: str) -> None:
    print(f"[ragas-driver {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- errors ---------------------------------------------------------------------------------------


def chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def endpoint_failure(exc: BaseException) -> str | None:
    """The reason, when an exception (or its cause) is the endpoint failing rather than the
    model answering something unusable: unreachable, timed out, refused, server error."""
    import openai

    for item in chain(exc):
        if isinstance(item, openai.APITimeoutError):
            return "timed out"
        if isinstance(item, openai.APIConnectionError):
            return f"cannot connect ({type(item.__cause__ or item).__name__})"
        if isinstance(item, openai.APIStatusError):
            status = item.status_code
            if status in FATAL_STATUS or status >= 500:
                return f"answered HTTP {status}: {str(item)[:200]}"
    return None


def describe(exc: BaseException) -> str:
    """One line for a row's error: the innermost useful message, without instructor's dumps."""
    for item in chain(exc):
        name = type(item).__name__
        if name == "ValidationError":
            first = str(item).splitlines()
            return f"the judge's answer does not match {first[0].split(' for ')[-1]}: " + (
                " ".join(line.strip() for line in first[1:3])
            )
        if name == "IncompleteOutputException":
            return "the judge's answer was cut off at max_tokens"
        if name == "JSONDecodeError":
            return f"the judge's answer is not JSON: {item}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


# -- the judge ------------------------------------------------------------------------------------

# Per row: the judge calls made and the last exception the judge raised (some RAGAS metrics
# swallow judge errors and return NaN; this keeps the reason).
ROW = contextvars.ContextVar("row")


def judge_llm(config: dict[str, Any]):
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory

    key = os.environ.get(config.get("api_key_env") or "", "") or NO_KEY
    client = AsyncOpenAI(
        base_url=config["base_url"],
        api_key=key,
        timeout=float(config["timeout"]),
        max_retries=int(config.get("endpoint_retries", 2)),
    )
    args = {
        "temperature": config["temperature"],
        "top_p": config.get("top_p") or 1.0,
        "max_tokens": int(config["max_tokens"]),
        "max_retries": int(config.get("reasks", 1)),  # instructor's re-asks on unparsable output
    }
    if config.get("seed") is not None:
        args["seed"] = int(config["seed"])
    llm = llm_factory(config["model"], client=client, **args)
    original = llm.agenerate
    counter = {"requests": 0}

    async def agenerate(prompt, response_model):
        state = ROW.get(None)
        if state is not None:
            state["judge_calls"] += 1
        counter["requests"] += 1
        try:
            return await original(prompt, response_model)
        except Exception as exc:
            if state is not None:
                state["judge_error"] = exc
            raise

    llm.agenerate = agenerate  # an instance attribute: the metrics call it
    return llm, client, counter


async def check_endpoint(client, what: str, url: str) -> None:
    """Fail early and clearly when an endpoint is down, instead of one NaN per row."""
    try:
        await client.models.list()
    except Exception as exc:
        reason = endpoint_failure(exc)
        if reason is not None:
            raise DriverError(
                f"the {what} endpoint {url} {reason}",
                "is the model server running, and the Model's url, served_name and api key right?",
            ) from None
        # Some servers do not list models; the scoring calls will tell.


# -- embeddings -----------------------------------------------------------------------------------


def embeddings_model(config: dict[str, Any]):
    kind = config["kind"]
    if kind == "endpoint":
        return endpoint_embeddings(config)
    from ragas.embeddings import HuggingFaceEmbeddings

    path = (
        Path(config["path"]) if kind == "path" else package_model_dir(config["package"], FRAMEWORK)
    )
    if not path.is_dir():
        raise DriverError(f"the embedding model directory {path} does not exist")
    log(f"loading the embedding model from {path}")
    try:
        return HuggingFaceEmbeddings(model=str(path), device=config.get("device"))
    except Exception as exc:
        raise DriverError(
            f"sentence-transformers cannot load {path}: {type(exc).__name__}: {exc}",
            "point the Model at a sentence-transformers model directory or package",
        ) from None


def endpoint_embeddings(config: dict[str, Any]):
    """/v1/embeddings through a synchronous client (RAGAS calls embed_text from async code),
    with the async methods run in a thread."""
    from openai import OpenAI
    from ragas.embeddings import OpenAIEmbeddings

    class ThreadedEmbeddings(OpenAIEmbeddings):
        async def aembed_text(self, text, **kwargs):
            return await asyncio.to_thread(self.embed_text, text, **kwargs)

        async def aembed_texts(self, texts, **kwargs):
            return await asyncio.to_thread(self.embed_texts, texts, **kwargs)

    key = os.environ.get(config.get("api_key_env") or "", "") or NO_KEY
    client = OpenAI(
        base_url=config["base_url"],
        api_key=key,
        timeout=float(config["timeout"]),
        max_retries=int(config.get("endpoint_retries", 2)),
    )
    try:
        client.models.list()
    except Exception as exc:
        reason = endpoint_failure(exc)
        if reason is not None:
            raise DriverError(
                f"the embedding endpoint {config['base_url']} {reason}",
                "is the embedding server running, and the Model's url and api key right?",
            ) from None
    return ThreadedEmbeddings(client=client, model=config["model"])


# -- metrics --------------------------------------------------------------------------------------


def build_metric(spec: dict[str, Any], llm, embeddings):
    from ragas.metrics import collections

    cls = getattr(collections, spec["class"], None)
    if cls is None:
        raise DriverError(f"ragas {version()} has no metric class {spec['class']}")
    parameters = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    for key, value in (spec.get("options") or {}).items():
        annotation = parameters[key].annotation if key in parameters else None
        if inspect.isclass(annotation) and issubclass(annotation, Enum):
            try:
                value = annotation(value)
            except ValueError:
                allowed = ", ".join(str(m.value) for m in annotation)
                raise DriverError(
                    f"{spec['name']}: {key} {value!r} is not one of {allowed}"
                ) from None
        kwargs[key] = value
    if spec.get("llm"):
        kwargs["llm"] = llm
    if spec.get("embeddings") and embeddings is not None:
        kwargs["embeddings"] = embeddings
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise DriverError(
            f"ragas cannot set up {spec['name']}: {type(exc).__name__}: {exc}",
            "check the benchmark's params for this metric",
        ) from None


async def score_row(metric, spec, row, limiter) -> dict[str, Any]:
    state = {"judge_calls": 0, "judge_error": None}
    ROW.set(state)
    inputs = {name: row[name] for name in spec["inputs"]}
    value = None
    error = None
    async with limiter:
        try:
            result = await metric.ascore(**inputs)
            value = float(result.value)
            if math.isnan(value) or math.isinf(value):
                value = None
                error = "the metric returned NaN"
                if state["judge_error"] is not None:
                    error += ": " + describe(state["judge_error"])
                elif spec.get("llm"):
                    error += " (the judge's answers gave it nothing to score)"
        except Exception as exc:
            reason = endpoint_failure(exc)
            if reason is not None:
                raise DriverError(
                    f"{spec['name']}: the judge endpoint {reason}",
                    "is the judge's model server running and healthy?",
                ) from None
            value = None
            error = describe(exc)
    if state["judge_error"] is not None:
        reason = endpoint_failure(state["judge_error"])
        if reason is not None:  # swallowed by the metric, still not the row's fault
            raise DriverError(
                f"{spec['name']}: the judge endpoint {reason}",
                "is the judge's model server running and healthy?",
            )
    return {"value": value, "error": error, "judge_calls": state["judge_calls"]}


def version() -> str:
    import ragas

    return str(ragas.__version__)


async def run(config: dict[str, Any]) -> dict[str, Any]:
    import ragas  # noqa: F401  (import errors are crashes, with their traceback)

    rows = config["rows"]
    specs = config["metrics"]
    llm = client = None
    counter = {"requests": 0}
    if config.get("judge"):
        llm, client, counter = judge_llm(config["judge"])
        await check_endpoint(client, "judge", config["judge"]["base_url"])
    embeddings = embeddings_model(config["embeddings"]) if config.get("embeddings") else None
    metrics = [(spec, build_metric(spec, llm, embeddings)) for spec in specs]
    limiter = asyncio.Semaphore(max(1, int(config.get("concurrency", 1))))
    scores: dict[str, list[dict[str, Any]]] = {}
    for spec, metric in metrics:
        started = time.monotonic()
        log(f"{spec['name']}: scoring {len(rows)} rows")
        # each task runs in a copy of the context: its own ROW state
        tasks = [asyncio.create_task(score_row(metric, spec, row, limiter)) for row in rows]
        try:
            scores[spec["name"]] = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        done = sum(1 for s in scores[spec["name"]] if s["value"] is not None)
        log(f"{spec['name']}: {done}/{len(rows)} rows scored in {time.monotonic() - started:.1f} s")
    if client is not None:
        await client.close()
    return {"ragas_version": version(), "metrics": scores, "judge_requests": counter["requests"]}


def write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: ragas_driver.py CONFIG.json RESULT.json", file=sys.stderr)
        return 64
    config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = Path(argv[2])
    try:
        data = asyncio.run(run(config))
    except DriverError as exc:
        log(f"error: {exc.message}")
        write(result, {"error": exc.message, "hint": exc.hint})
        return 2
    write(result, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
