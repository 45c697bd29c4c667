"""The facts an apply records with every run, gathered once before any unit starts: the
machine, the spec repository's commit and remote, each endpoint's /models answer and each
managed environment's packages. One frozen RunFacts, so recording never does I/O of its own
beyond the store, and every executor's units record the same facts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalhub import __version__
from evalhub.adapters.environments import packages
from evalhub.adapters.git import head_commit, remote_url
from evalhub.adapters.machine import machine_facts
from evalhub.adapters.openai_client import fetch_models
from evalhub.app.project import Project
from evalhub.core.job import JobSpec
from evalhub.core.runs import RunFacts


def gather_facts(project: Project, jobs: Sequence[JobSpec]) -> RunFacts:
    return RunFacts(
        evalhub_version=__version__,
        commit=head_commit(project.root),
        source=remote_url(project.root),
        machine=machine_facts(),
        endpoints=endpoints(jobs),
        packages={
            job.environment: packages(Path(job.environment)) for job in jobs if job.environment
        },
    )


def endpoints(jobs: Sequence[JobSpec]) -> dict[str, Any]:
    """Each endpoint's /models answer (or the error met asking), once per URL."""
    found: dict[str, Any] = {}
    for job in jobs:
        endpoint = job.spec.model.endpoint
        if endpoint is None or endpoint.url in found:
            continue
        key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        found[endpoint.url] = fetch_models(endpoint, key)
    return found
