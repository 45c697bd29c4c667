"""NVIDIA garak (0.17.x), run as `python -m garak` in the provider's managed environment.

One unit runs one probe: the benchmark id is a garak probe name (`module.Class`, e.g.
`encoding.InjectBase64`) with the probe's own (recommended) detectors. The Model must have a
chat endpoint; garak reaches it through its `openai.OpenAICompatible` generator, configured by a
generator option file (uri, max_tokens, temperature, top_p and the request timeout from the
Model; `n`, penalties and `stop` suppressed, which llama.cpp-style servers reject or misuse).
The API key goes through the environment (OPENAICOMPATIBLE_API_KEY, which garak reads): the
Model's `api_key_env` value, or a placeholder when it names none (garak wants a key even when
the server does not). It is never written to a file.

Offline and isolated: XDG_DATA_HOME / XDG_CACHE_HOME / XDG_CONFIG_HOME point into the unit's
output directory (garak's log, its plugin cache copy, and no site config from the machine),
reports go to `garak_runs/` there, HF_*_OFFLINE are set.

Settings, each from the entry's `params`, else the Provider's `config`, else the default:
- `generations` (1): responses per prompt;
- `soft_probe_prompt_cap` (20; the evaluation-wide `limit` param is used when this one is not
  given): at most this many prompts of the probe, sampled with `seed`;
- `seed` (none): garak's run seed, also sent with each request;
- `eval_threshold` (0.5): detector score at or above which a response is a hit;
- `parallel_attempts` (the unit's concurrency; 1 runs attempts one at a time).

garak exits 0 even when it runs nothing (unknown probe, unreachable endpoint), so success is
judged from its report: `garak_runs/garak.report.jsonl` with `eval` entries for the probe.
While it runs, the endpoint is watched: refused connections for DOWN_GRACE_SECONDS fail the unit
(garak itself would retry forever).

Metrics, from the report's `eval` entries (one per detector: passed, fails, total_evaluated):
- `pass_rate`: sum of `passed` / sum of `total_evaluated` over all the probe's detectors, i.e.
  the share of (response, detector) checks passed; 1.0 means no detector ever fired;
- `pass_rate/<detector>` (e.g. `pass_rate/encoding.DecodeMatch`): the same for one detector;
- `hits`: sum of `fails` (responses a detector flagged, counted per detector);
- `responses`: responses evaluated; `failed_responses`: responses the endpoint did not give;
- `probe_score`: garak's own probe score from its digest (detectors aggregated by garak's
  `group_aggregation_function`, lower_quartile by default), when the digest is present.
`samples` is the number of completed attempts (prompts). Artifacts: the report, the hit log
(only when something was hit), garak's log, its console output, the config and generator
options it ran with.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from evalhub.adapters.openai_client import api_key
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
KEY_VARIABLE = "OPENAICOMPATIBLE_API_KEY"  # OpenAICompatible.ENV_VAR
PLACEHOLDER_KEY = "sk-local"
PREFIX = "garak"
PROBE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Watching the endpoint while garak runs; module constants so tests can shorten them.
POLL_SECONDS = 5.0
DOWN_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class Settings:
    generations: int
    prompt_cap: int
    seed: int | None
    eval_threshold: float
    parallel_attempts: int


@dataclass(frozen=True)
class Report:
    metrics: dict[str, float]
    samples: int
    version: str | None


def _setting(job: JobSpec, name: str, default: Any = None) -> Any:
    """An entry param, else the provider's config value, else `default`."""
    for source in (job.spec.params, job.spec.provider.config):
        if source.get(name) is not None:
            return source[name]
    return default


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UnitError(
            f"garak's `{name}` must be an integer of at least {minimum}, not {value!r}",
            "fix it in the entry's params or the garak Provider's config",
        )
    return value


def settings(job: JobSpec) -> Settings:
    """The run's settings (see the module docstring)."""
    cap = job.spec.params.get("soft_probe_prompt_cap")
    if cap is None:
        cap = job.spec.params.get("limit")
    if cap is None:
        cap = job.spec.provider.config.get("soft_probe_prompt_cap", 20)
    seed = _setting(job, "seed")
    threshold = _setting(job, "eval_threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise UnitError(
            f"garak's `eval_threshold` must be a number, not {threshold!r}",
            "fix it in the entry's params or the garak Provider's config",
        )
    return Settings(
        generations=_integer("generations", _setting(job, "generations", 1), 1),
        prompt_cap=_integer("soft_probe_prompt_cap", cap, 1),
        seed=None if seed is None else _integer("seed", seed, 0),
        eval_threshold=float(threshold),
        parallel_attempts=_integer(
            "parallel_attempts", _setting(job, "parallel_attempts", job.concurrency), 1
        ),
    )


def check_unit(job: JobSpec) -> str:
    """The endpoint URL, after checking garak can evaluate this unit at all."""
    unit = job.spec
    if not job.environment:
        raise UnitError(
            "garak runs in its managed environment, but the provider lists no requirements",
            'add `requirements: ["torch==2.13.0", "garak==0.17.1"]` to the garak Provider',
        )
    endpoint = unit.model.endpoint
    if unit.model.type != "generative" or endpoint is None or endpoint.api != "chat":
        raise UnitError(
            f"garak probes a chat model, but model {unit.model.name!r} is not reached through "
            "a chat endpoint",
            "evaluate garak benchmarks on a Model with `type: generative` and `endpoint.api: chat`",
        )
    if not PROBE.match(unit.benchmark):
        raise UnitError(
            f"{unit.benchmark!r} is not a garak probe name",
            "garak benchmark ids are probe names module.Class, e.g. encoding.InjectBase64",
        )
    return endpoint.url


def generator_options(job: JobSpec) -> dict[str, Any]:
    """garak's --generator_option_file: no key in it (that goes through the environment)."""
    model = job.spec.model
    assert model.endpoint is not None
    options: dict[str, Any] = {
        "uri": model.endpoint.url,
        "max_tokens": model.defaults.max_tokens,
        "temperature": model.defaults.temperature,
        "timeout": model.defaults.timeout_seconds,
        "suppressed_params": ["n", "frequency_penalty", "presence_penalty", "stop"],
    }
    if model.defaults.top_p is not None:
        options["top_p"] = model.defaults.top_p
    return {"openai": {"OpenAICompatible": options}}


def run_config(settings: Settings, report_dir: Path) -> dict[str, Any]:
    """garak's --config (YAML; written as JSON, which YAML reads)."""
    return {
        "system": {
            "lite": True,
            "narrow_output": True,
            # garak's `false` runs attempts in-process; a number forks a pool of that size
            "parallel_attempts": settings.parallel_attempts > 1 and settings.parallel_attempts,
        },
        "run": {
            "generations": settings.generations,
            "soft_probe_prompt_cap": settings.prompt_cap,
            "seed": settings.seed,
            "eval_threshold": settings.eval_threshold,
        },
        "reporting": {"report_dir": str(report_dir)},
    }


def command(job: JobSpec, config: Path, options: Path) -> list[str]:
    python = Path(str(job.environment)) / "bin" / "python"
    assert job.spec.model.endpoint is not None
    return [
        str(python), "-m", "garak",
        "--config", str(config),
        "--target_type", "openai.OpenAICompatible",
        "--target_name", job.spec.model.endpoint.served_name,
        "--generator_option_file", str(options),
        "--spec", f"probes.{job.spec.benchmark}",
        "--report_prefix", PREFIX,
    ]  # fmt: skip


def environment(out: Path, key: str | None) -> dict[str, str]:
    env = {**os.environ, **OFFLINE}
    for kind in ("data", "cache", "config"):
        env[f"XDG_{kind.upper()}_HOME"] = str(out / "xdg" / kind)
    env[KEY_VARIABLE] = key or PLACEHOLDER_KEY
    return env


def _probe_score(digest: dict[str, Any], probe: str) -> float | None:
    for group in (digest.get("eval") or {}).values():
        summary = (group.get(probe) or {}).get("_summary") if isinstance(group, dict) else None
        if isinstance(summary, dict):
            score = summary.get("probe_score")
            if isinstance(score, int | float) and not isinstance(score, bool):
                return float(score)
    return None


class NoEvaluation(UnitError):
    """garak's report is missing or evaluated nothing: why is in what garak printed."""


def parse_report(path: Path, probe: str) -> Report:
    """Metrics from a garak report.jsonl (see the module docstring)."""
    if not path.is_file():
        raise NoEvaluation(f"garak wrote no report {path.name}")
    try:
        return _parse(path, probe)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise UnitError(
            f"garak's {path.name} has entries evalhub cannot read ({type(exc).__name__}: {exc})",
            "is the garak Provider's version one this adapter supports (0.17)?",
        ) from None


def _parse(path: Path, probe: str) -> Report:
    evals: list[dict[str, Any]] = []
    samples = 0
    version: str | None = None
    responses: int | None = None
    nones = 0
    probe_score: float | None = None
    for number, line in enumerate(
        path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
    ):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise UnitError(f"garak's {path.name} line {number} is not JSON") from None
        if not isinstance(entry, dict):
            continue
        kind = entry.get("entry_type")
        if kind == "init":
            version = entry.get("garak_version") or version
        elif kind == "attempt" and str(entry.get("status")) == "2":
            samples += entry.get("probe_classname") == probe
        elif kind == "eval" and entry.get("probe") == probe:
            evals.append(entry)
        elif kind == "probe_summary" and entry.get("probe") == probe:
            counts = entry.get("inference_counts") or {}
            responses = int(counts.get("total_evaluated", 0))
            nones = int(counts.get("nones", 0))
        elif kind == "digest":
            probe_score = _probe_score(entry, probe)
            version = version or (entry.get("meta") or {}).get("garak_version")
    if not evals:
        raise NoEvaluation(
            f"garak's report has no evaluation of probe {probe} (did the run finish?)",
            "see garak.log and garak_console.log among the unit's artifacts",
        )
    passed = sum(int(e.get("passed", 0)) for e in evals)
    total = sum(int(e.get("total_evaluated", 0)) for e in evals)
    if total == 0:
        raise UnitError(
            f"garak evaluated no responses of probe {probe}: the endpoint returned none",
            "see garak.log for the endpoint's errors",
        )
    metrics = {
        "pass_rate": passed / total,
        "hits": float(sum(int(e.get("fails", 0)) for e in evals)),
    }
    for entry in evals:
        evaluated = int(entry.get("total_evaluated", 0))
        if evaluated:
            metrics[f"pass_rate/{entry['detector']}"] = int(entry.get("passed", 0)) / evaluated
    if responses is not None:
        metrics["responses"] = float(responses)
        metrics["failed_responses"] = float(nones)
    if probe_score is not None:
        metrics["probe_score"] = probe_score
    return Report(metrics=metrics, samples=samples, version=version)


def console_failure(console: str, job: JobSpec) -> UnitError:
    """Why garak ran nothing, from what it printed (it exits 0 in these cases)."""
    text = ANSI.sub("", console)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    endpoint = job.spec.model.endpoint
    if "not reachable" in text:
        return UnitError(
            f"garak cannot reach the model endpoint {endpoint.url if endpoint else ''}",
            "start the model server, or fix the Model's endpoint url",
        )
    if "Unknown run.spec" in text or "Unknown probe" in text:
        return UnitError(
            f"garak has no probe {job.spec.benchmark!r}",
            "benchmark ids are garak probe names (module.Class); list them with "
            f"`{job.environment}/bin/python -m garak --list_probes`",
        )
    if "authentication failed" in text:
        variable = endpoint.api_key_env if endpoint else None
        return UnitError(
            "the model endpoint refused garak's API key",
            f"check the key in {variable}" if variable else "set `api_key_env` on the Model",
        )
    tail = " | ".join(lines[-4:]) or "no output"
    return UnitError(f"garak produced no results: {tail}", "see garak_console.log and garak.log")


def _reachable(url: str) -> bool:
    """False only when the server refuses connections; a slow or erroring server is up."""
    try:
        httpx.get(url, timeout=3.0)
    except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL):
        return False
    except httpx.HTTPError:
        return True
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # garak's attempt pool lives in the same group
    proc.wait()


class _Progress:
    """Requests garak completed so far, counted in its log (the report is written buffered)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0
        self.count = 0

    def update(self) -> int:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return self.count
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        self.count += chunk[:end].count(b"HTTP Request: POST")
        return self.count


def run_garak(
    cmd: list[str], env: dict[str, str], out: Path, job: JobSpec, url: str,
    callbacks: JobCallbacks, total: int,
) -> int:  # fmt: skip
    """Run garak; returns its exit code. Fails on timeout or an endpoint that went away."""
    progress = _Progress(Path(env["XDG_DATA_HOME"]) / "garak" / "garak.log")
    deadline = time.monotonic() + job.timeout_seconds
    down_since: float | None = None
    with (out / "garak_console.log").open("wb") as console:
        proc = subprocess.Popen(
            cmd, cwd=out, env=env, stdout=console, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            while True:
                try:
                    return proc.wait(timeout=POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if now >= deadline:
                    raise UnitError(
                        f"garak timed out after {job.timeout_seconds:g} s",
                        "lower soft_probe_prompt_cap or generations, or raise the timeout",
                    )
                done = progress.update()
                update = JobStatusUpdate(
                    phase="running",
                    message="garak requests",
                    completed=min(done, total),
                    total=total,
                )
                callbacks.report_status(update)
                if _reachable(url):
                    down_since = None
                elif down_since is None:
                    down_since = now
                elif now - down_since >= DOWN_GRACE_SECONDS:
                    raise UnitError(
                        f"the model endpoint {url} stopped accepting connections while garak ran",
                        "restart the model server and apply again",
                    )
        finally:
            if proc.returncode is None:
                _stop(proc)


class GarakAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        url = check_unit(job)
        endpoint = job.spec.model.endpoint
        assert endpoint is not None
        run = settings(job)
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        reports = out / "garak_runs"
        for stale in (reports, out / "xdg"):
            shutil.rmtree(stale, ignore_errors=True)  # a retried unit must not read old output
        reports.mkdir()
        config, options = out / "garak_config.yaml", out / "generator_options.json"
        config.write_text(json.dumps(run_config(run, reports), indent=2), encoding="utf-8")
        options.write_text(json.dumps(generator_options(job), indent=2), encoding="utf-8")
        cmd = command(job, config, options)
        (out / "command.json").write_text(json.dumps(cmd, indent=2), encoding="utf-8")
        env = environment(out, api_key(endpoint))
        callbacks.report_status(
            JobStatusUpdate(phase="running", message=f"garak {job.spec.benchmark}")
        )
        started = time.monotonic()
        code = run_garak(cmd, env, out, job, url, callbacks, run.prompt_cap * run.generations)
        console = (out / "garak_console.log").read_text(encoding="utf-8", errors="replace")
        if code != 0:
            lines = [line.strip() for line in ANSI.sub("", console).splitlines() if line.strip()]
            raise UnitError(
                f"garak exited {code}: {' | '.join(lines[-6:])}", "see garak_console.log"
            )
        report_path = reports / f"{PREFIX}.report.jsonl"
        try:
            report = parse_report(report_path, job.spec.benchmark)
        except NoEvaluation:
            raise console_failure(console, job) from None
        artifacts = {
            "garak.report.jsonl": str(report_path.relative_to(out)),
            "garak_console.log": "garak_console.log",
            "garak_config.yaml": "garak_config.yaml",
            "generator_options.json": "generator_options.json",
        }
        for name, path in (
            ("garak.hitlog.jsonl", reports / f"{PREFIX}.hitlog.jsonl"),
            ("garak.log", out / "xdg" / "data" / "garak" / "garak.log"),
        ):
            if path.is_file():
                artifacts[name] = str(path.relative_to(out))
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics=report.metrics,
            primary_metric=job.spec.primary_metric,
            samples=report.samples,
            duration_seconds=time.monotonic() - started,
            framework="garak",
            framework_version=report.version,
            artifacts=artifacts,
        )
