"""`evalhub run-unit`: the one way a unit runs, everywhere (local process, container, Job).

Reads a JobSpec, runs the provider's adapter, and writes JobResults atomically. An expected
failure (UnitError) and an adapter crash both become a `failed` result with the reason, so the
executor can always tell a failed unit from one that never finished (no result file).

An endpoint or a framework may repeat the unit's API key (a 401 body echoing the Authorization
header): the result and every file the adapter left are redacted before anything reads them.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from evalhub.app.compose import load_adapter, redact_tree, result_bundle
from evalhub.core.errors import ConfigError, UnitError
from evalhub.core.job import (
    PROGRESS_PREFIX,
    JobResults,
    JobSpec,
    JobStatusUpdate,
    failed_result,
)
from evalhub.core.redact import Redactor
from evalhub.core.scoring import metric_value, normalise
from evalhub.core.secrets import WELL_KNOWN, secret_values
from evalhub.core.unit_env import key_variables


class StderrCallbacks:
    """Progress as JSON lines on stderr, which the local executor reads."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self.emit = emit or (lambda line: print(line, file=sys.stderr, flush=True))

    def report_status(self, update: JobStatusUpdate) -> None:
        self.emit(PROGRESS_PREFIX + update.model_dump_json(exclude_none=True))


def read_job(path: Path) -> JobSpec:
    try:
        return JobSpec.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read unit spec {path}: {exc.strerror}") from None
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"{path} is not a unit spec: {str(exc).splitlines()[0]}") from None


def site_packages(environment: str | None) -> list[Path]:
    if not environment:
        return []
    return sorted(Path(environment).glob("lib/python*/site-packages"))


LEFT_BEHIND_FILES = 50
LEFT_BEHIND_BYTES = 20 * 1024 * 1024


def left_behind(output_dir: Path) -> dict[str, str]:
    """What a failed adapter left in its output directory (its logs and raw output), so the
    failure's evidence is recorded as artifacts too: at most 50 files of up to 20 MiB each."""
    if not output_dir.is_dir():
        return {}
    kept: dict[str, str] = {}
    for path in sorted(output_dir.rglob("*")):
        if len(kept) >= LEFT_BEHIND_FILES:
            break
        if path.is_symlink() or not path.is_file() or path.stat().st_size > LEFT_BEHIND_BYTES:
            continue
        relative = path.relative_to(output_dir).as_posix()
        kept[relative] = relative
    return kept


def execute(job: JobSpec) -> JobResults:
    """Run the job's adapter; never raises for a failure of the unit itself."""
    unit = job.spec
    search = [Path(job.project_root), Path(job.spec_root), *site_packages(job.environment)]
    try:
        adapter = load_adapter(unit.provider.adapter, search)
        result = adapter.run_benchmark_job(job, StderrCallbacks())
    except UnitError as exc:
        message = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return failed_result(job, message, left_behind(Path(job.output_dir)))
    except Exception as exc:
        Path(job.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(job.output_dir) / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        error = f"the {unit.provider.adapter} adapter crashed: {type(exc).__name__}: {exc}"
        return failed_result(job, error, {"error.log": "error.log"})
    if result.status != "succeeded":
        return result
    value = metric_value(result.metrics, unit.primary_metric)
    if value is None:
        reported = ", ".join(sorted(result.metrics)) or "none"
        return result.model_copy(
            update={
                "status": "failed",
                "error": f"the result has no metric {unit.primary_metric!r} (reported: {reported})",
            }
        )
    score = normalise(value, unit.scale, unit.direction)
    return result.model_copy(update={"primary_value": value, "score": score})


def write_result(result: JobResults, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)


def redact_result(result: JobResults, redactor: Redactor) -> JobResults:
    return result.model_copy(update={"error": redactor.optional(result.error)})


def anchored(job: JobSpec, base: Path) -> JobSpec:
    """The job with its relative paths (a Kubernetes pod's unit.json) made absolute against
    `base`, so a framework that changes directory still finds them."""
    paths = {"spec_root": job.spec_root, "project_root": job.project_root}
    paths["output_dir"] = job.output_dir
    update = {k: str(base / v) for k, v in paths.items() if not Path(v).is_absolute()}
    return job.model_copy(update=update) if update else job


def run_unit(job_path: Path, out_path: Path, bundle: bool = False) -> tuple[JobResults, str | None]:
    """Run the unit; with `bundle`, also its result and output as one line for stdout (how a
    Kubernetes pod hands them back: evalhub.adapters.executors.bundle)."""
    job = anchored(read_job(job_path), Path.cwd())
    redactor = Redactor(secret_values(os.environ, [*WELL_KNOWN, *key_variables(job)]))
    result = redact_result(execute(job), redactor)
    redact_tree(Path(job.output_dir), redactor)
    write_result(result, out_path)
    return result, result_bundle(out_path, Path(job.output_dir)) if bundle else None
