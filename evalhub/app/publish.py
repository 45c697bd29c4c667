"""Publishing results: sign and publish one result to the project's target (apply), and copy
published results from one target to another (`evalhub publish`).

The signing key is loaded first (no key, nothing pushed); the publisher (evalhub.ports) does
the rest — see evalhub/adapters/oci/publisher.py for the order of pushes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalhub.app import compose
from evalhub.app.keys import load_signer
from evalhub.app.project import Project
from evalhub.core.errors import ConfigError, PublishError
from evalhub.core.publication import Copied, Published
from evalhub.core.result import EvaluationResult
from evalhub.ports import Publisher, Signer

__all__ = ["Copied", "Published", "check_publish_settings", "copy_results", "publish_result"]


def publish_result(
    project: Project,
    result: EvaluationResult,
    environment: Mapping[str, Any],
    publisher: Publisher | None = None,
    signer: Signer | None = None,
) -> Published:
    """Publish and sign `result` to `publisher` (default: the project's `registry.target`).

    `environment` becomes the environment layer (python, packages, OS, machine). Every
    failure, a missing key or a bad registry setting included, is a PublishError: the caller
    has recorded the result already and can publish it later.
    """
    signer = signer or load_signer(project)
    publisher = publisher or compose.project_publisher(project)
    return publisher.publish(result, environment, signer)


def check_publish_settings(project: Project, publisher: Publisher | None = None) -> Publisher:
    """Fail fast, before any unit runs, on what would make every publish fail: a malformed
    `registry.target`, plain HTTP to a remote host, no signing key. Touches no network.
    Returns `publisher`, by default the project's."""
    publisher = publisher or compose.publisher(project)
    load_signer(project)
    return publisher


def copy_results(
    project: Project,
    destination: str,
    source: str | None = None,
    tags: list[str] | None = None,
    insecure: bool | None = None,
) -> list[Copied]:
    """Copy results (every result tag of `source`, or `tags`) with their attestations to
    `destination`, digests unchanged. `source` defaults to the project's layout; `insecure`
    None means registry.insecure of evalhub.yaml."""
    origin = compose.publisher(project, source or compose.default_layout(project))
    target = compose.publisher(project, destination, insecure)
    if origin.target == target.target:
        raise ConfigError(f"{destination} is where the results are already")
    chosen = tags if tags else origin.result_tags()
    if not chosen:
        raise PublishError(
            f"{origin.target} holds no results to publish",
            "run `evalhub apply` first (it publishes to registry.target)",
        )
    return [origin.copy_to(target, tag) for tag in chosen]
