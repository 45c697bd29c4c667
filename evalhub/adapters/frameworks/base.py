"""What the framework adapters share besides running the driver (runner.py), reading settings
(settings.py) and finding embeddings (embeddings.py): the managed environment's python, the
unit's files and datasets, the driver's output, and the result."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec

if TYPE_CHECKING:
    from evalhub.core.spec.model import Endpoint


def api_key(endpoint: Endpoint) -> str | None:
    """The key from the variable the Model names (None when it names none); a named variable
    that is unset fails the unit, naming the variable — never a value."""
    if not endpoint.api_key_env:
        return None
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise UnitError(
            f"environment variable {endpoint.api_key_env} is not set",
            "export the model's API key under that name",
        )
    return key


def python(job: JobSpec, framework: str, requirements: str) -> Path:
    """The managed environment's python; a Provider without one cannot run `framework`."""
    if not job.environment:
        raise UnitError(
            f"{framework} runs in its managed environment, but the provider lists no requirements",
            f"add `requirements: {requirements}` to the {framework} Provider",
        )
    return Path(job.environment) / "bin" / "python"


def output_dir(job: JobSpec) -> Path:
    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def tokenizer_dir(job: JobSpec, why: str) -> str:
    """The Model's local tokenizer directory (`tokenizer: {path|path_env}`)."""
    tokenizer = job.spec.model.tokenizer
    if tokenizer is None:
        raise UnitError(
            f"{why}, but Model {job.spec.model.name!r} names none",
            "set `tokenizer: {path: …}` or `{path_env: …}` on the Model",
        )
    if tokenizer.path_env:
        value = os.environ.get(tokenizer.path_env)
        if not value:
            raise UnitError(
                f"environment variable {tokenizer.path_env} (the model's tokenizer) is not set",
                "export the tokenizer directory under that name",
            )
        path = Path(value)
    else:
        path = Path(job.project_root) / str(tokenizer.path)
    if not path.is_dir():
        raise UnitError(f"tokenizer directory {path} does not exist")
    return str(path)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL dataset; blank lines skipped, anything else that is not a
    JSON object fails the unit naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UnitError(f"cannot read the dataset {path}: {reason}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UnitError(f"{path}:{number}: not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise UnitError(f"{path}:{number}: a row must be a JSON object")
        yield number, row


def dataset_rows(
    path: Path, limit: int | None, row: Callable[[int, dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """The first `limit` rows of a JSONL dataset, each checked or converted by `row(line, raw)`;
    a dataset without rows fails the unit."""
    rows: list[dict[str, Any]] = []
    for number, raw in read_jsonl(path):
        rows.append(row(number, raw))
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise UnitError(f"{path} holds no rows")
    return rows


def read_output(path: Path, driver: str, code: int, tail: str) -> Any:
    """The JSON a driver wrote to `path`: missing or not JSON fails the unit."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnitError(
            f"the {driver} driver exited {code} without a result: {tail}", f"see {driver}.log"
        ) from None
    except ValueError:
        raise UnitError(f"the {driver} driver's output is not JSON", f"see {driver}.log") from None


def succeeded(
    job: JobSpec,
    framework: str,
    started: float,
    metrics: dict[str, float],
    samples: int,
    version: str | None,
    artifacts: dict[str, str],
) -> JobResults:
    """A unit's successful result (`started`: time.monotonic() before the framework ran)."""
    return JobResults(
        fingerprint=job.fingerprint,
        status="succeeded",
        metrics=metrics,
        primary_metric=job.spec.primary_metric,
        samples=samples,
        duration_seconds=time.monotonic() - started,
        framework=framework,
        framework_version=version,
        artifacts=artifacts,
    )
