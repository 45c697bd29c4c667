"""The facts an apply records with every run, gathered once before any unit starts: the
machine, the spec repository's commit and remote, each endpoint's /models answer and each
managed environment's packages. One frozen RunFacts, so recording never does I/O of its own
beyond the store, and every executor's units record the same facts."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evalhub import __version__
from evalhub.app.compose import (
    fetch_models,
    head_commit,
    lock,
    machine_facts,
    packages,
    remote_url,
)
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
        locks={job.environment: lock(Path(job.environment)) for job in jobs if job.environment},
        user=_user(),
    )


def _user() -> str | None:
    """Who runs the apply, as MLflow itself would record it (mlflow.user)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def more_facts(facts: RunFacts, jobs: Sequence[JobSpec]) -> RunFacts:
    """`facts` with the endpoints and environments of `jobs` (a later batch) added."""
    return replace(
        facts,
        endpoints={**facts.endpoints, **endpoints(jobs, known=set(facts.endpoints))},
        packages={
            **facts.packages,
            **{job.environment: packages(Path(job.environment)) for job in jobs if job.environment},
        },
        locks={
            **facts.locks,
            **{job.environment: lock(Path(job.environment)) for job in jobs if job.environment},
        },
    )


def endpoints(jobs: Sequence[JobSpec], known: set[str] | None = None) -> dict[str, Any]:
    """Each endpoint's /models answer (or the error met asking), once per URL (none of the
    `known` ones)."""
    found: dict[str, Any] = {}
    known = known or set()
    for job in jobs:
        endpoint = job.spec.model.endpoint
        if endpoint is None or endpoint.url in found or endpoint.url in known:
            continue
        key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        found[endpoint.url] = fetch_models(endpoint, key)
    return found
