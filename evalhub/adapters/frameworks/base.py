"""What the framework adapters share besides running the driver (runner.py): reading a unit's
settings, the checks every unit passes first, where embeddings come from, and the result."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from evalhub.core.resolved import ResolvedModel

_MISSING: Any = object()


@dataclass(frozen=True)
class Settings:
    """Typed reads of a unit's settings, from the first of `sources` that sets each (e.g. the
    entry's params, then the Provider's config). A bad value fails the unit naming it."""

    framework: str
    sources: tuple[tuple[str, Mapping[str, Any]], ...]

    @classmethod
    def params(cls, job: JobSpec, framework: str) -> Settings:
        return cls(framework, (("param", job.spec.params),))

    @classmethod
    def config(cls, job: JobSpec, framework: str) -> Settings:
        return cls(framework, (("config", job.spec.provider.config),))

    @classmethod
    def both(cls, job: JobSpec, framework: str) -> Settings:
        """Entry params first, then the Provider's config."""
        return cls(framework, (("param", job.spec.params), ("config", job.spec.provider.config)))

    def _find(self, name: str) -> tuple[Any, str]:
        for where, values in self.sources:
            if values.get(name) is not None:
                return values[name], where
        return None, self.sources[0][0]

    def raw(self, name: str, default: Any = None) -> Any:
        value, _ = self._find(name)
        return default if value is None else value

    def _bad(self, name: str, where: str, expected: str, value: Any) -> UnitError:
        place = "the benchmark's `params`" if where == "param" else "the Provider's `config`"
        return UnitError(
            f"{self.framework} {where} `{name}` must be {expected}, not {value!r}",
            f"fix it in {place}",
        )

    def integer(self, name: str, default: Any = None, minimum: int | None = None) -> Any:
        """An int (at least `minimum`), else `default` when unset."""
        value, where = self._find(name)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (minimum is not None and value < minimum)
        ):
            expected = "an integer" if minimum is None else f"an integer of at least {minimum}"
            raise self._bad(name, where, expected, value)
        return value

    def number(
        self,
        name: str,
        default: Any = None,
        *,
        positive: bool = False,
        within: tuple[float, float] | None = None,
    ) -> Any:
        """A float (> 0 when `positive`, inside `within` when given), else `default`."""
        value, where = self._find(name)
        if value is None:
            return default
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and positive:
            ok = value > 0
        if ok and within is not None:
            ok = within[0] <= value <= within[1]
        if not ok:
            expected = "a positive number" if positive else "a number"
            if within is not None:
                expected = f"a number in [{within[0]:g}, {within[1]:g}]"
            raise self._bad(name, where, expected, value)
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value, where = self._find(name)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            raise self._bad(name, where, f"one of {', '.join(choices)}", value)
        return value


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


def requirement_name(requirement: str) -> str:
    """The normalised (PEP 503) project name of a pip requirement."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    name = match.group(1) if match else requirement
    return re.sub(r"[-_.]+", "-", name).lower()


def required_package(job: JobSpec, package: str, owner: str, extra: str = "") -> str:
    """`package`, checked to be among the Provider's requirements (the environment has it)."""
    provider = job.spec.provider
    if requirement_name(package) not in {requirement_name(r) for r in provider.requirements}:
        raise UnitError(
            f"{owner} is shipped by the package {package}, which is not among the "
            f"{provider.name} Provider's requirements",
            f"add `{package}`{extra} to the Provider's `requirements`",
        )
    return package


@dataclass(frozen=True)
class Embeddings:
    """Where an embedding Model's vectors come from, checked: an installed package shipping a
    sentence-transformers model, a model directory, or an OpenAI-compatible endpoint."""

    kind: Literal["package", "path", "endpoint"]
    package: str | None = None
    path: str | None = None
    url: str | None = None
    served_name: str | None = None
    keyed: bool = False  # the endpoint wants the key the Model names
    timeout: float = 0.0


def embeddings_source(job: JobSpec, model: ResolvedModel, extra: str = "") -> Embeddings:
    """The embeddings of `model` (an embedding Model of the unit) for a driver."""
    if model.endpoint is not None:
        endpoint = model.endpoint
        if endpoint.api != "embeddings":
            raise UnitError(
                f"Model {model.name} is served through the {endpoint.api} API, which returns no "
                "embeddings",
                "give the Model `endpoint.api: embeddings` (an OpenAI-compatible /v1/embeddings)",
            )
        return Embeddings(
            "endpoint",
            url=endpoint.url,
            served_name=endpoint.served_name,
            keyed=bool(endpoint.api_key_env),
            timeout=model.defaults.timeout_seconds,
        )
    local = model.local
    if local is not None and local.package is not None:
        package = required_package(job, local.package, f"Model {model.name}", extra)
        return Embeddings("package", package=package)
    if local is None:
        raise UnitError(f"Model {model.name} has neither an endpoint nor a local model")
    if local.path is None:
        raise UnitError(f"Model {model.name}'s local path leaves the spec root")
    path = Path(job.spec_root) / local.path  # resolved against the spec root, like datasets
    if not path.is_dir():
        raise UnitError(
            f"the model directory {path} (Model {model.name}) does not exist",
            "`local.path` is relative to the Model's spec file",
        )
    return Embeddings("path", path=str(path))


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
