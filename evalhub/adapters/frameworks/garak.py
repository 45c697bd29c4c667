"""NVIDIA garak (0.17.x), run as `python -m garak` in the provider's managed environment: one unit
runs one probe. The manual: docs/frameworks/garak.md."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from evalhub.adapters.frameworks.base import api_key, output_dir, python, succeeded, write_json
from evalhub.adapters.frameworks.runner import ANSI, Driver, driver_environment, run_driver
from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.ports import JobCallbacks

REQUIREMENTS = '["torch==2.13.0", "garak==0.17.1"]'
KEY_VARIABLE = "OPENAICOMPATIBLE_API_KEY"  # OpenAICompatible.ENV_VAR
PLACEHOLDER_KEY = "sk-local"
PREFIX = "garak"
PROBE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
# Watching the endpoint while garak runs; module constants so tests can shorten them.
POLL_SECONDS = 5.0
XDG = ("data", "cache", "config")
DOWN_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class RunSettings:
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


def settings(job: JobSpec) -> RunSettings:
    """The run's settings (docs/frameworks/garak.md): entry params, else the Provider's config,
    else the defaults; the evaluation-wide `limit` stands in for an unset prompt cap."""
    read, params = Settings.both(job, "garak"), Settings.params(job, "garak")
    cap = params.integer("soft_probe_prompt_cap", minimum=1)
    if cap is None:
        cap = params.integer("limit", minimum=1)
    if cap is None:
        cap = Settings.config(job, "garak").integer("soft_probe_prompt_cap", 20, minimum=1)
    return RunSettings(
        generations=read.integer("generations", 1, minimum=1),
        prompt_cap=cap,
        seed=read.integer("seed", minimum=0),
        eval_threshold=read.number("eval_threshold", 0.5),
        parallel_attempts=read.integer("parallel_attempts", job.concurrency, minimum=1),
    )


def check_unit(job: JobSpec) -> str:
    """The endpoint URL, after checking garak can evaluate this unit at all."""
    unit = job.spec
    python(job, "garak", REQUIREMENTS)
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


def run_config(settings: RunSettings, report_dir: Path) -> dict[str, Any]:
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
    assert job.spec.model.endpoint is not None
    return [
        str(python(job, "garak", REQUIREMENTS)), "-m", "garak",
        "--config", str(config),
        "--target_type", "openai.OpenAICompatible",
        "--target_name", job.spec.model.endpoint.served_name,
        "--generator_option_file", str(options),
        "--spec", f"probes.{job.spec.benchmark}",
        "--report_prefix", PREFIX,
    ]  # fmt: skip


def environment(job: JobSpec, out: Path, key: str | None) -> dict[str, str]:
    """garak's XDG homes inside the unit's output directory (its log, its plugin cache copy,
    and no site config from the machine), and the key garak reads (it wants one always)."""
    own = {f"XDG_{kind.upper()}_HOME": str(out / "xdg" / kind) for kind in XDG}
    return driver_environment(job, {**own, KEY_VARIABLE: key or PLACEHOLDER_KEY})


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


class _Watch:
    """While garak runs: its progress to the callbacks, and a check of the endpoint, which
    fails the unit after refusing connections for DOWN_GRACE_SECONDS (garak retries forever)."""

    def __init__(self, log: Path, url: str, callbacks: JobCallbacks, total: int) -> None:
        self.progress = _Progress(log)
        self.url = url
        self.callbacks = callbacks
        self.total = total
        self.down_since: float | None = None

    def __call__(self) -> None:
        done = self.progress.update()
        self.callbacks.report_status(
            JobStatusUpdate(
                phase="running",
                message="garak requests",
                completed=min(done, self.total),
                total=self.total,
            )
        )
        now = time.monotonic()
        if _reachable(self.url):
            self.down_since = None
        elif self.down_since is None:
            self.down_since = now
        elif now - self.down_since >= DOWN_GRACE_SECONDS:
            raise UnitError(
                f"the model endpoint {self.url} stopped accepting connections while garak ran",
                "restart the model server and apply again",
            )


def artifacts(out: Path, reports: Path) -> dict[str, str]:
    found = {
        "garak.report.jsonl": str((reports / f"{PREFIX}.report.jsonl").relative_to(out)),
        "garak_console.log": "garak_console.log",
        "garak_config.yaml": "garak_config.yaml",
        "generator_options.json": "generator_options.json",
    }
    for name, path in (
        ("garak.hitlog.jsonl", reports / f"{PREFIX}.hitlog.jsonl"),
        ("garak.log", out / "xdg" / "data" / "garak" / "garak.log"),
    ):
        if path.is_file():
            found[name] = str(path.relative_to(out))
    return found


class GarakAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        url = check_unit(job)
        endpoint = job.spec.model.endpoint
        assert endpoint is not None
        run = settings(job)
        out = output_dir(job)
        reports = out / "garak_runs"
        for stale in (reports, out / "xdg"):
            shutil.rmtree(stale, ignore_errors=True)  # a retried unit must not read old output
        reports.mkdir()
        config = write_json(out / "garak_config.yaml", run_config(run, reports))  # YAML reads JSON
        options = write_json(out / "generator_options.json", generator_options(job))
        cmd = command(job, config, options)
        write_json(out / "command.json", cmd)
        env = environment(job, out, api_key(endpoint))
        callbacks.report_status(
            JobStatusUpdate(phase="running", message=f"garak {job.spec.benchmark}")
        )
        started = time.monotonic()
        watch = _Watch(out / "xdg" / "data" / "garak" / "garak.log", url, callbacks,
                       run.prompt_cap * run.generations)  # fmt: skip
        hint = "lower soft_probe_prompt_cap or generations, or raise the timeout"
        console = out / "garak_console.log"
        finished = run_driver(
            Driver("garak", cmd, out, env, console, job.timeout_seconds, hint, watch, POLL_SECONDS)
        )
        if finished.returncode != 0:
            raise finished.failure()
        try:
            report = parse_report(reports / f"{PREFIX}.report.jsonl", job.spec.benchmark)
        except NoEvaluation:
            text = console.read_text(encoding="utf-8", errors="replace")
            raise console_failure(text, job) from None
        return succeeded(
            job, "garak", started, report.metrics, report.samples, report.version,
            artifacts(out, reports),
        )  # fmt: skip
