"""Where an embedding Model's vectors come from, for the adapters whose drivers embed text
(mteb, ragas): checked here, described to the driver by each adapter in its own shape."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from evalhub.core.errors import UnitError
from evalhub.core.job import JobSpec
from evalhub.core.resolved import ResolvedModel


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
