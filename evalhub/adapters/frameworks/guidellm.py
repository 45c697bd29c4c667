"""GuideLLM (0.8.x) load benchmarks, run as `python -m guidellm run --scenario …` in the provider's
managed environment. The manual: docs/frameworks/guidellm.md."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalhub.adapters.environments import packages
from evalhub.adapters.frameworks.base import (
    api_key,
    output_dir,
    python,
    succeeded,
    tokenizer_dir,
    write_json,
)
from evalhub.adapters.frameworks.runner import Driver, driver_environment, run_driver
from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

PROFILES = ("synchronous", "concurrent", "throughput", "constant", "poisson")
REQUEST_FORMATS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
API_KEY_VARIABLE = "GUIDELLM__SPEC__BACKEND__API_KEY"
DEFAULT_PROMPT_TOKENS = 128
# metric name prefix -> (GuideLLM metric, factor to the unit in the name, unit suffix)
DISTRIBUTIONS = {
    "request_latency": ("request_latency", 1000.0, "_ms"),  # seconds in GuideLLM's JSON
    "ttft": ("time_to_first_token_ms", 1.0, "_ms"),
    "itl": ("inter_token_latency_ms", 1.0, "_ms"),
    "tpot": ("time_per_output_token_ms", 1.0, "_ms"),
    "output_tokens_per_second": ("output_tokens_per_second", 1.0, ""),
    "requests_per_second": ("requests_per_second", 1.0, ""),
}
STATUSES = ("successful", "errored", "incomplete", "total")
REQUIREMENTS = '["torch==2.13.0", "guidellm==0.8.1"]'


def _params(job: JobSpec) -> Settings:
    return Settings.params(job, "guidellm")


def request_format(job: JobSpec) -> str:
    endpoint = job.spec.model.endpoint
    if job.spec.model.type != "generative" or endpoint is None or endpoint.api == "embeddings":
        raise UnitError(
            "guidellm benchmarks a generative Model served through a completions or chat endpoint",
            "evaluate it on a Model with `endpoint.api: completions` or `chat`",
        )
    name = _params(job).choice("request_format", tuple(REQUEST_FORMATS), endpoint.api)
    return REQUEST_FORMATS[name]


def backend_target(url: str) -> tuple[str, dict[str, str]]:
    """GuideLLM's `target` and `api_routes` for an endpoint base URL: it strips a trailing /v1
    from the target and appends `v1/…` routes, so the routes are given for any base URL."""
    base = url.rstrip("/")
    target = base.removesuffix("/v1")
    prefix = base[len(target) :].strip("/")
    join = (lambda path: f"{prefix}/{path}") if prefix else (lambda path: path)
    routes = {
        "/v1/completions": join("completions"),
        "/v1/chat/completions": join("chat/completions"),
        "/v1/models": join("models"),
    }
    return target, routes


def profile(params: Settings) -> dict[str, Any]:
    kind = params.choice("profile", PROFILES, "synchronous")
    concurrency = params.integer("concurrency", minimum=1)
    rate = params.number("rate", positive=True)
    if kind == "concurrent":
        if concurrency is None:
            raise UnitError("guidellm profile 'concurrent' needs the param 'concurrency'")
        return {"kind": kind, "streams": [concurrency]}
    if kind in ("constant", "poisson"):
        if rate is None:
            raise UnitError(f"guidellm profile {kind!r} needs the param 'rate' (requests/s)")
        return {"kind": kind, "rate": [rate], "max_concurrency": concurrency}
    if kind == "throughput":
        return {"kind": kind, "max_concurrency": concurrency}
    return {"kind": kind}


def constraints(params: Settings) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if (count := params.integer("max_requests", minimum=1)) is not None:
        found.append({"kind": "max_requests", "count": count})
    if (seconds := params.number("max_seconds", positive=True)) is not None:
        found.append({"kind": "max_duration", "seconds": seconds})
    if not found:
        raise UnitError(
            "guidellm needs `max_requests` or `max_seconds` in the benchmark's params",
            "synthetic data never runs out: say when the benchmark stops",
        )
    return found


def scenario(job: JobSpec, tokenizer: str, output: Path) -> dict[str, Any]:
    """The GuideLLM scenario for the unit (no secrets: the API key goes by environment)."""
    unit = job.spec
    endpoint = unit.model.endpoint
    fmt = request_format(job)
    assert endpoint is not None  # request_format checked it
    params = _params(job)
    target, routes = backend_target(endpoint.url)
    sampling: dict[str, Any] = {"temperature": unit.model.defaults.temperature}
    if unit.model.defaults.top_p is not None:
        sampling["top_p"] = unit.model.defaults.top_p
    data = {
        "kind": "synthetic_text",
        "prompt_tokens": params.integer("prompt_tokens", DEFAULT_PROMPT_TOKENS, minimum=1),
        "output_tokens": params.integer("output_tokens", unit.model.defaults.max_tokens, 1),
    }
    spec: dict[str, Any] = {
        "backend": {
            "kind": "openai_http",
            "target": target,
            "api_routes": routes,
            "model": endpoint.served_name,
            "request_format": fmt,
            # llama.cpp and others have no /health; an unreachable endpoint shows as errors
            "validate_backend": False,
            "timeout": unit.model.defaults.timeout_seconds,
            "extras": {"body": sampling},
        },
        "profile": profile(params),
        "constraints": constraints(params),
        "data": [data],
        "tokenizer": {"kind": "hf_auto", "model": tokenizer},
        "outputs": [{"kind": "json", "path": str(output)}],
    }
    if (seed := params.integer("seed")) is not None:
        spec["seed"] = {"kind": "static", "value": seed}
    return {"spec": spec}


def command(job: JobSpec, scenario_path: Path) -> list[str]:
    return [
        str(python(job, "guidellm", REQUIREMENTS)), "-m", "guidellm", "run",
        "--scenario", str(scenario_path),
        "--disable-console-interactive",
    ]  # fmt: skip


@dataclass(frozen=True)
class Report:
    metrics: dict[str, float]
    requests: int
    version: str | None
    errors: tuple[str, ...]  # the distinct errors of a few errored requests


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _stats(distribution: Any) -> dict[str, float]:
    percentiles = distribution["percentiles"]
    return {
        "mean": _number(distribution["mean"]),
        "median": _number(distribution["median"]),
        "p95": _number(percentiles["p95"]),
        "p99": _number(percentiles["p99"]),
    }


def request_errors(benchmark: dict[str, Any], limit: int = 3) -> list[str]:
    """The distinct errors of the errored requests GuideLLM kept."""
    errors: list[str] = []
    for request in (benchmark.get("requests") or {}).get("errored") or []:
        info = request.get("info") if isinstance(request, dict) else None
        error = str((info or {}).get("error") or "").strip()
        if error and error not in errors:
            errors.append(error[:300])
    return errors[:limit]


def parse_report(path: Path) -> Report:
    """Flat metrics from GuideLLM's benchmarks.json (its last benchmark)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise UnitError(f"GuideLLM wrote no report at {path.name}", "see guidellm.log") from None
    except ValueError:
        raise UnitError(f"GuideLLM's {path.name} is not JSON", "see guidellm.log") from None
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, list) or not benchmarks or not isinstance(benchmarks[-1], dict):
        raise UnitError(f"GuideLLM's {path.name} holds no benchmark", "see guidellm.log")
    benchmark = benchmarks[-1]
    try:
        raw = benchmark["metrics"]
        totals = {status: int(_number(raw["request_totals"][status])) for status in STATUSES}
        metrics: dict[str, float] = {
            f"requests_{status}": float(count) for status, count in totals.items()
        }
        for name, (source, factor, suffix) in DISTRIBUTIONS.items():
            for stat, value in _stats(raw[source]["successful"]).items():
                metrics[f"{name}_{stat}{suffix}"] = value * factor
        metrics["prompt_tokens_mean"] = _number(raw["prompt_token_count"]["successful"]["mean"])
        metrics["output_tokens_mean"] = _number(raw["output_token_count"]["successful"]["mean"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnitError(
            f"GuideLLM's {path.name} is not in the expected shape ({type(exc).__name__}: {exc})",
            "is the provider's guidellm version the one this adapter knows (0.8)?",
        ) from None
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    version = metadata.get("guidellm_version")
    return Report(
        metrics,
        totals["total"],
        str(version) if version else None,
        tuple(request_errors(benchmark)),
    )


def check_errors(report: Report, max_error_rate: float, url: str, chat: bool) -> None:
    """Fail a run in which no request succeeded (GuideLLM itself exits 0 and reports zeros), or
    more than `max_error_rate` of the finished requests errored."""
    succeeded = int(report.metrics["requests_successful"])
    errored = int(report.metrics["requests_errored"])
    detail = "; ".join(report.errors) or "no request completed"
    hint = "is the model server up and serving this served_name?"
    if chat:  # llama-cpp-python, for one: an empty stream, and a TypeError in its log
        hint += (
            " Chat servers whose template rejects list-form message content answer GuideLLM's "
            "requests empty: try the param `request_format: completions`"
        )
    if succeeded == 0:
        raise UnitError(f"all {report.requests} GuideLLM requests to {url} failed: {detail}", hint)
    if errored > max_error_rate * (succeeded + errored):
        raise UnitError(
            f"{errored} of {succeeded + errored} GuideLLM requests to {url} failed "
            f"(max_error_rate {max_error_rate:g}): {detail}",
            "the server failed under this load; see benchmarks.json, or allow a higher "
            "`max_error_rate` in the benchmark's params",
        )


def error_rate(job: JobSpec) -> float:
    rate: float = _params(job).number("max_error_rate", 0.0, within=(0, 1))
    return rate


def environment(job: JobSpec) -> dict[str, str]:
    """The driver's environment, with the API key (never a file or the command line); the
    caller's GUIDELLM* settings are not inherited, so a run depends on its spec alone."""
    endpoint = job.spec.model.endpoint
    key = api_key(endpoint) if endpoint is not None else None
    return driver_environment(job, {API_KEY_VARIABLE: key} if key else {})


def installed_version(environment: str | None) -> str | None:
    """guidellm's version in the managed environment's `pip freeze`."""
    for line in packages(Path(environment) if environment else None):
        name, _, version = line.partition("==")
        if name.lower() == "guidellm":
            return version
    return None


class GuideLLMAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        python(job, "guidellm", REQUIREMENTS)
        why = "GuideLLM sizes its synthetic prompts with the model's tokenizer"
        tokenizer = tokenizer_dir(job, why)
        out = output_dir(job)
        report_path = out / "benchmarks.json"
        report_path.unlink(missing_ok=True)  # never parse a previous attempt's report
        config = scenario(job, tokenizer, report_path)
        max_error_rate = error_rate(job)
        env = environment(job)
        cmd = command(job, write_json(out / "scenario.json", config))
        write_json(out / "command.json", cmd)
        limit = next((c.get("count") for c in config["spec"]["constraints"] if "count" in c), None)
        callbacks.report_status(JobStatusUpdate(phase="running", message="guidellm", total=limit))
        started = time.monotonic()
        hint = "lower max_requests / max_seconds, or raise the evaluation's timeout_seconds"
        driver = Driver("guidellm", cmd, out, env, out / "guidellm.log", job.timeout_seconds, hint)
        run = run_driver(driver)
        if run.returncode != 0:
            raise run.failure()
        url = job.spec.model.endpoint.url if job.spec.model.endpoint else "the endpoint"
        chat = config["spec"]["backend"]["request_format"] == REQUEST_FORMATS["chat"]
        report = parse_report(report_path)
        check_errors(report, max_error_rate, url, chat)
        version = report.version or installed_version(job.environment)
        artifacts = {name: name for name in ("benchmarks.json", "scenario.json", "guidellm.log")}
        return succeeded(
            job, "guidellm", started, report.metrics, report.requests, version, artifacts
        )
