"""From the plan to the jobs an executor runs: one JobSpec per distinct unit to run, each with
its provider's managed environment built (or the reason it could not be, which makes that
unit a failed result without running it)."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Literal

from evalhub.app.project import Project
from evalhub.core.errors import ConfigError, EvalhubError
from evalhub.core.job import JobResults, JobSpec, failed_result
from evalhub.core.plan import UnitWork
from evalhub.core.render_progress import environment_name
from evalhub.core.resolved import ResolvedEvaluation, ResolvedUnit
from evalhub.core.runs import Scheduled
from evalhub.ports import EnvironmentEvents, EnvironmentStore, ExecutionEvents, Executor

DEFAULT_CONCURRENCY = 4  # requests in flight within a unit, when the evaluation does not say


Environments = EnvironmentStore  # the port: where providers' managed environments come from


ExecutorKind = Literal["local", "dagger", "kubernetes"]
PROVIDED: tuple[ExecutorKind, ...] = ("local", "dagger", "kubernetes")


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
                "use `execution: {executor: local}`, `dagger` or `kubernetes`",
            )
        if executor not in kinds:
            kinds.append(executor)
    return kinds


def environment_root(project: Project) -> Path | None:
    """Where the managed environments live (None: the default, ~/.cache/evalhub/envs)."""
    configured = project.config.executors.environments_dir
    return project.root / configured if configured else None


Needs = tuple[tuple[str, ...], tuple[str, ...]]  # a provider's requirements and its lock


def needs(unit: ResolvedUnit) -> Needs:
    return unit.provider.requirements, unit.provider.lock


Batch = tuple[list[JobSpec], list[tuple[JobSpec, JobResults]]]  # to run, failed before running


def build_jobs(
    project: Project,
    scheduled: Sequence[Scheduled],
    environments: Environments,
    events: EnvironmentEvents | None = None,
) -> Batch:
    """Every job to run, and the units that failed before running (their environment could
    not be built), once every environment is built."""
    jobs: list[JobSpec] = []
    failures: list[tuple[JobSpec, JobResults]] = []
    for ready, failed in job_batches(project, scheduled, environments, events):
        jobs += ready
        failures += failed
    return jobs, failures


def job_batches(
    project: Project,
    scheduled: Sequence[Scheduled],
    environments: Environments,
    events: EnvironmentEvents | None = None,
    builders: int = 2,
) -> Generator[Batch, None, None]:
    """The jobs, in batches as their environments become ready: the units needing none (or one
    built already, or running in a container, which brings its own) come first and run while
    the others build, `builders` at a time. A unit shared by several evaluations is one job,
    under its first evaluation."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    wanted: list[tuple[ResolvedEvaluation, ResolvedUnit, UnitWork]] = []
    contained: list[JobSpec] = []
    # (requirements, lock) -> the providers using them: one environment each
    users: dict[Needs, list[str]] = {}
    for item in scheduled:
        for work in item.action.units:
            if work.status == "shared":
                continue
            unit = next(u for u in item.evaluation.units if u.key == work.key)
            if executor_kind(project, item.evaluation) != "local":
                contained.append(job_spec(project, item.evaluation, unit, work, None, stamp))
                continue
            wanted.append((item.evaluation, unit, work))
            users.setdefault(needs(unit), []).append(unit.provider.name)
    if contained:
        yield contained, []
    pool = ThreadPoolExecutor(max_workers=builders, thread_name_prefix="evalhub-env")
    try:
        futures = {
            pool.submit(_environment, project, environments, reqs, names, events): reqs
            for reqs, names in users.items()
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            built = {futures[f]: f.result() for f in done}
            batch: Batch = ([], [])
            for evaluation, unit, work in wanted:
                reqs = needs(unit)
                if reqs not in built:
                    continue
                env = built[reqs]
                job = job_spec(project, evaluation, unit, work, env, stamp)
                if isinstance(env, str):
                    batch[1].append((job, failed_result(job, f"provider environment: {env}")))
                else:
                    batch[0].append(job)
            yield batch
    finally:
        # Interrupted: builds not started are dropped; running ones end with their pip (Ctrl-C
        # reaches it too), and an unfinished build is never moved into place.
        pool.shutdown(wait=False, cancel_futures=True)


def _environment(
    project: Project,
    environments: Environments,
    wanted: Needs,
    providers: list[str],
    events: EnvironmentEvents | None,
) -> Path | str | None:
    requirements, lock = wanted
    log = project.state_dir / "logs" / "environments.log"
    name = environment_name(providers, requirements) if requirements else ""
    building = False

    def step(text: str) -> None:
        nonlocal building
        building = True
        if events is not None:
            events.environment_step(name, text)

    try:
        env = environments.ensure(list(requirements), log, step, lock)
    except EvalhubError as exc:
        if events is not None:
            events.environment_done(name, f"{exc.message.splitlines()[0]} (log: {log})")
        return exc.message
    if building and events is not None:
        events.environment_done(name, None)
    return env


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
