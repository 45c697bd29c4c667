"""From the plan to the jobs an executor runs: one JobSpec per distinct unit to run, each with
its provider's managed environment built (or the reason it could not be, which makes that
unit a failed result without running it)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from evalhub.app.project import Project
from evalhub.core.errors import ConfigError, EvalhubError
from evalhub.core.job import JobResults, JobSpec, failed_result
from evalhub.core.plan import UnitWork
from evalhub.core.resolved import ResolvedEvaluation, ResolvedUnit
from evalhub.core.runs import Scheduled
from evalhub.ports import EnvironmentStore, ExecutionEvents, Executor

DEFAULT_CONCURRENCY = 4  # requests in flight within a unit, when the evaluation does not say


Environments = EnvironmentStore  # the port: where providers' managed environments come from


ExecutorKind = Literal["local", "dagger", "kubernetes"]
PROVIDED: tuple[ExecutorKind, ...] = ("local", "dagger")


def executor_kind(project: Project, evaluation: ResolvedEvaluation) -> ExecutorKind:
    """The evaluation's `execution.executor`, else evalhub.yaml's `executors.default`."""
    execution = evaluation.execution
    if "executor" in execution.model_fields_set:
        return execution.executor
    return project.config.executors.default


def check_executors(project: Project, scheduled: Sequence[Scheduled]) -> list[ExecutorKind]:
    """The executors the scheduled evaluations use; refuses, before anything runs, an
    evaluation whose executor this evalhub lacks."""
    kinds: list[ExecutorKind] = []
    for item in scheduled:
        executor = executor_kind(project, item.evaluation)
        if executor not in PROVIDED:
            raise ConfigError(
                f"evaluation {item.name!r} asks for the {executor} "
                "executor, which this evalhub does not provide yet",
                "use `execution: {executor: local}` or `{executor: dagger}` for now",
            )
        if executor not in kinds:
            kinds.append(executor)
    return kinds


def environment_root(project: Project) -> Path | None:
    """Where the managed environments live (None: the default, ~/.cache/evalhub/envs)."""
    configured = project.config.executors.environments_dir
    return project.root / configured if configured else None


def build_jobs(
    project: Project, scheduled: Sequence[Scheduled], environments: Environments
) -> tuple[list[JobSpec], list[tuple[JobSpec, JobResults]]]:
    """The jobs to run, and the units that failed before running (their environment could not
    be built). A unit shared by several evaluations is one job, under its first evaluation."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    jobs: list[JobSpec] = []
    failures: list[tuple[JobSpec, JobResults]] = []
    built: dict[tuple[str, ...], Path | str | None] = {}  # requirements -> env or why not
    for item in scheduled:
        for work in item.action.units:
            if work.status == "shared":
                continue
            unit = next(u for u in item.evaluation.units if u.key == work.key)
            requirements = unit.provider.requirements
            env: Path | str | None = None  # a container brings its own environment
            if executor_kind(project, item.evaluation) == "local":
                if requirements not in built:
                    built[requirements] = _environment(project, environments, requirements)
                env = built[requirements]
            job = job_spec(project, item.evaluation, unit, work, env, stamp)
            if isinstance(env, str):
                failures.append((job, failed_result(job, f"provider environment: {env}")))
            else:
                jobs.append(job)
    return jobs, failures


def _environment(
    project: Project, environments: Environments, requirements: tuple[str, ...]
) -> Path | str | None:
    log = project.state_dir / "logs" / "environments.log"
    try:
        return environments.ensure(list(requirements), log)
    except EvalhubError as exc:
        return exc.message


def job_spec(
    project: Project,
    evaluation: ResolvedEvaluation,
    unit: ResolvedUnit,
    work: UnitWork,
    env: Path | str | None,
    stamp: str,
) -> JobSpec:
    workdir = project.state_dir / "runs" / f"{stamp}-{work.fingerprint[:16]}"
    timeout = evaluation.execution.timeout_seconds or project.config.executors.timeout_seconds
    return JobSpec(
        evaluation=evaluation.name,
        unit=work.unit,
        fingerprint=work.fingerprint,
        spec=unit,
        spec_root=str(spec_root(project, evaluation).resolve()),
        project_root=str(project.root.resolve()),
        output_dir=str((workdir / "output").resolve()),
        environment=str(env) if isinstance(env, Path) else None,
        timeout_seconds=timeout,
        concurrency=evaluation.execution.concurrency or DEFAULT_CONCURRENCY,
    )


def spec_root(project: Project, evaluation: ResolvedEvaluation) -> Path:
    """The spec root holding the evaluation's file (its `files` are relative to it)."""
    source = (project.root / evaluation.source).resolve()
    roots = project.spec_source().roots
    return next((r for r in roots if r.resolve() in source.parents), project.root)


class ByExecutor:
    """The Executor of an apply whose evaluations name different executors: each job runs on
    its evaluation's (all results still go to the one recorder)."""

    def __init__(
        self,
        project: Project,
        scheduled: Sequence[Scheduled],
        executors: Mapping[ExecutorKind, Executor],
    ) -> None:
        self.kinds = {s.name: executor_kind(project, s.evaluation) for s in scheduled}
        self.executors = executors

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        results: dict[str, JobResults] = {}
        for kind, executor in self.executors.items():
            mine = [job for job in jobs if self.kinds.get(job.evaluation, "local") == kind]
            if mine:
                results.update(executor.run(mine, events))
        return results
