"""The state store, behind the redactor: no secret value reaches an MLflow tag, param or
artifact, whoever wrote the text (an endpoint's error, a framework's log, a /models answer)."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace

from evalhub.core.project import ProjectConfig
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.redact import Redactor
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.secrets import model_key_variables, protected_variables, secret_values
from evalhub.core.state import State
from evalhub.ports import StateStore


def apply_redactor(
    config: ProjectConfig, evaluations: Iterable[ResolvedEvaluation], env: Mapping[str, str]
) -> Redactor:
    """The secrets in play during an apply: evalhub's own (signing key, registry and MLflow
    credentials, CI tokens) and every Model's API key."""
    units = [u for e in evaluations for u in e.units]
    names = protected_variables(config) | model_key_variables(units)
    return Redactor(secret_values(env, names))


def _strings(values: Mapping[str, str], redactor: Redactor) -> dict[str, str]:
    return {key: redactor.text(value) for key, value in values.items()}


class RedactingStore:
    """A StateStore whose writes pass through a redactor; reads go straight through."""

    def __init__(self, store: StateStore, redactor: Redactor) -> None:
        self.store = store
        self.redactor = redactor
        self.uri = store.uri
        self.identity = store.identity

    def read(self, fingerprints: Collection[str]) -> State:
        return self.store.read(fingerprints)

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State:
        return self.store.read_alongside(work)

    def index_runs(self, progress: Callable[[int, int], None] | None = None) -> int:
        return self.store.index_runs(progress)

    def start_run(self, run: NewRun) -> str:
        return self.store.start_run(replace(run, tags=_strings(run.tags, self.redactor)))

    def finish_run(self, run_id: str, outcome: RunOutcome) -> None:
        clean = replace(
            outcome,
            params=_strings(outcome.params, self.redactor),
            tags=_strings(outcome.tags, self.redactor),
            error=self.redactor.optional(outcome.error),
            artifacts={k: self.redactor.bytes(v) for k, v in outcome.artifacts.items()},
        )
        self.store.finish_run(run_id, clean)

    def fail_interrupted_runs(self) -> list[str]:
        return self.store.fail_interrupted_runs()


def redacting(
    store: StateStore, config: ProjectConfig, evaluations: Iterable[ResolvedEvaluation]
) -> StateStore:
    """`store` behind the apply's redactor (itself when no secret is in play)."""
    redactor = apply_redactor(config, evaluations, os.environ)
    return RedactingStore(store, redactor) if redactor else store
