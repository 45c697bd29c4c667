"""GuideLLM (0.8.x) load benchmarks, run as `python -m guidellm run --scenario …` in the provider's
managed environment.

The adapter writes a GuideLLM scenario file (`scenario.json` in the unit's output directory):
the OpenAI HTTP backend pointed at the Model's endpoint, synthetic text data, one profile, its
constraints, the Model's local tokenizer (GuideLLM counts tokens to size synthetic prompts; the
Model must set `tokenizer: {path|path_env}`), and JSON output. The API key reaches GuideLLM only
through the environment (GUIDELLM__SPEC__BACKEND__API_KEY); other GUIDELLM* variables of the
caller are dropped so a run depends on its spec alone.

Benchmark params:
- `profile`: synchronous (default) | concurrent | throughput | constant | poisson;
- `concurrency`: streams for `concurrent` (required), maximum in flight for the others;
- `rate`: requests per second for `constant` / `poisson` (required there);
- `max_requests`, `max_seconds`: when to stop (at least one is required);
- `prompt_tokens` (default 128), `output_tokens` (default: the Model's `max_tokens`);
- `request_format`: completions | chat (default: the Model endpoint's `api`). GuideLLM 0.8
  sends chat messages with list-form content, which some servers' chat templates reject
  (llama-cpp-python answers such requests with an empty stream): latency through
  /v1/completions of the same server is the fallback;
- `seed`: GuideLLM's random seed (synthetic prompts);
- `max_error_rate` (default 0): the fraction of finished requests that may error before the
  unit fails (single-slot servers such as llama-cpp-python drop some concurrent requests).
Other params (e.g. an evaluation-wide `limit`) are ignored. Requests carry the Model's
temperature (and top_p); `timeout_seconds` is the per-request timeout.

Metrics (over successful requests; latency always in milliseconds — GuideLLM reports request
latency in seconds):
- `request_latency_{mean,median,p95,p99}_ms`, `ttft_…_ms` (time to first token), `itl_…_ms`
  (inter-token latency), `tpot_…_ms` (time per output token);
- `output_tokens_per_second_{mean,median,p95,p99}`, `requests_per_second_{…}`;
- `requests_successful`, `requests_errored`, `requests_incomplete`, `requests_total`,
  `prompt_tokens_mean`, `output_tokens_mean`.
A run in which no request succeeded (endpoint down, wrong model name, a server rejecting the
request format), or more than `max_error_rate` errored, fails the unit with the server's errors:
it never records a 0 ms latency.

Latency has no natural [0, 1] range. Give the catalogue benchmark `direction: lower` and a
`scale` (e.g. `{min: 0, max: 5000}` for a p95 in ms: 0 ms scores 1.0, 5000 ms or more 0.0);
a collection entry with `weight: 0` keeps it out of the aggregate while its `threshold` still
gates.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalhub.adapters.environments import packages
from evalhub.adapters.frameworks.lm_eval import OFFLINE, tokenizer_dir
from evalhub.adapters.openai_client import api_key
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


def _positive(params: dict[str, Any], name: str, kind: type[int] | type[float]) -> Any:
    """`params[name]` as a positive int or float (None when absent)."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise UnitError(f"guidellm param {name!r} must be a positive number, got {value!r}")
    if kind is int and value != int(value):
        raise UnitError(f"guidellm param {name!r} must be a whole number, got {value!r}")
    return kind(value)


def request_format(job: JobSpec) -> str:
    endpoint = job.spec.model.endpoint
    if job.spec.model.type != "generative" or endpoint is None or endpoint.api == "embeddings":
        raise UnitError(
            "guidellm benchmarks a generative Model served through a completions or chat endpoint",
            "evaluate it on a Model with `endpoint.api: completions` or `chat`",
        )
    name = job.spec.params.get("request_format", endpoint.api)
    if not isinstance(name, str) or name not in REQUEST_FORMATS:
        raise UnitError(
            f"guidellm param 'request_format' must be one of {', '.join(REQUEST_FORMATS)}, "
            f"got {name!r}"
        )
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


def profile(params: dict[str, Any]) -> dict[str, Any]:
    kind = params.get("profile", "synchronous")
    if kind not in PROFILES:
        raise UnitError(
            f"guidellm param 'profile' must be one of {', '.join(PROFILES)}, got {kind!r}"
        )
    concurrency = _positive(params, "concurrency", int)
    rate = _positive(params, "rate", float)
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


def constraints(params: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if (count := _positive(params, "max_requests", int)) is not None:
        found.append({"kind": "max_requests", "count": count})
    if (seconds := _positive(params, "max_seconds", float)) is not None:
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
    params = unit.params
    target, routes = backend_target(endpoint.url)
    sampling: dict[str, Any] = {"temperature": unit.model.defaults.temperature}
    if unit.model.defaults.top_p is not None:
        sampling["top_p"] = unit.model.defaults.top_p
    output_tokens = _positive(params, "output_tokens", int) or unit.model.defaults.max_tokens
    data = {
        "kind": "synthetic_text",
        "prompt_tokens": _positive(params, "prompt_tokens", int) or DEFAULT_PROMPT_TOKENS,
        "output_tokens": output_tokens,
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
    if (seed := params.get("seed")) is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UnitError(f"guidellm param 'seed' must be an integer, got {seed!r}")
        spec["seed"] = {"kind": "static", "value": seed}
    return {"spec": spec}


def command(job: JobSpec, scenario_path: Path) -> list[str]:
    python = Path(str(job.environment)) / "bin" / "python"
    return [
        str(python), "-m", "guidellm", "run",
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


def error_rate(params: dict[str, Any]) -> float:
    value = params.get("max_error_rate", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise UnitError(f"guidellm param 'max_error_rate' must lie in [0, 1], got {value!r}")
    return float(value)


def environment(job: JobSpec) -> dict[str, str]:
    """The caller's environment without GUIDELLM* settings, offline, with the API key."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GUIDELLM")}
    env.update(OFFLINE)
    endpoint = job.spec.model.endpoint
    key = api_key(endpoint) if endpoint is not None else None
    if key:
        env[API_KEY_VARIABLE] = key  # through the environment, never a file or the command line
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path, timeout: float) -> int:
    """Run GuideLLM in its own process group: its scheduler's worker processes go with it on a
    timeout or an interrupt, never left behind to load the endpoint."""
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise UnitError(
                f"guidellm timed out after {timeout:g} s",
                "lower max_requests / max_seconds, or raise the evaluation's timeout_seconds",
            ) from None
        except BaseException:
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def installed_version(environment: str | None) -> str | None:
    """guidellm's version in the managed environment's `pip freeze`."""
    for line in packages(Path(environment) if environment else None):
        name, _, version = line.partition("==")
        if name.lower() == "guidellm":
            return version
    return None


class GuideLLMAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        if not job.environment:
            raise UnitError(
                "guidellm runs in its managed environment, but the provider lists no requirements",
                'add `requirements: ["torch==2.13.0", "guidellm==0.8.1"]` to the guidellm Provider',
            )
        if job.spec.model.tokenizer is None:
            raise UnitError(
                f"GuideLLM sizes its synthetic prompts with the model's tokenizer, but Model "
                f"{job.spec.model.name!r} names none",
                "set `tokenizer: {path: …}` or `{path_env: …}` on the Model",
            )
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        report_path = out / "benchmarks.json"
        report_path.unlink(missing_ok=True)  # never parse a previous attempt's report
        config = scenario(job, tokenizer_dir(job), report_path)
        max_error_rate = error_rate(job.spec.params)
        env = environment(job)
        scenario_path = out / "scenario.json"
        scenario_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        cmd = command(job, scenario_path)
        (out / "command.json").write_text(json.dumps(cmd, indent=2), encoding="utf-8")
        limit = next((c.get("count") for c in config["spec"]["constraints"] if "count" in c), None)
        callbacks.report_status(JobStatusUpdate(phase="running", message="guidellm", total=limit))
        started = time.monotonic()
        log_path = out / "guidellm.log"
        code = run(cmd, out, env, log_path, job.timeout_seconds)
        if code != 0:
            lines = log_path.read_text(errors="replace").strip().splitlines()
            tail = " | ".join(line.strip() for line in lines[-6:] if line.strip())
            raise UnitError(f"guidellm exited {code}: {tail}", "see guidellm.log")
        url = job.spec.model.endpoint.url if job.spec.model.endpoint else "the endpoint"
        chat = config["spec"]["backend"]["request_format"] == REQUEST_FORMATS["chat"]
        report = parse_report(report_path)
        check_errors(report, max_error_rate, url, chat)
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics=report.metrics,
            primary_metric=job.spec.primary_metric,
            samples=report.requests,
            duration_seconds=time.monotonic() - started,
            framework="guidellm",
            framework_version=report.version or installed_version(job.environment),
            artifacts={
                "benchmarks.json": "benchmarks.json",
                "scenario.json": "scenario.json",
                "guidellm.log": "guidellm.log",
            },
        )
