"""The Dagger executor: each unit runs `evalhub run-unit` in its Provider's runner image through
the `dagger-io` SDK, and the apply process records its result like a local unit's.

- A unit's container gets only what it names: its identity files, adapter code and tokenizer
  directories, mounted from the host (Dagger mounts are snapshots: the host copy is never
  written), plus its unit.json (evalhub.core.container_job).
- A model endpoint on the host's loopback is reached through Dagger's host-service tunnel; the
  API key goes as a Dagger secret (`secret("env://NAME")` + `with_secret_variable`), which the
  engine reads from its session client's environment: never in a query's text (as
  `set_secret`'s plaintext would be), a cache key, an argument or a log.
- Every attempt carries its own id, so a failed attempt is never served from Dagger's cache as
  a later attempt's result.
- The result document and the adapter's raw output are exported to the unit's work directory,
  masked with everything the parent knows is secret, then reported (ExecutionEvents) exactly as
  the local executor reports them.
- Bounded concurrency, the unit's time limit (the image build is outside it), Ctrl-C cancels
  every unit's request (the engine cancels what they ran) and raises KeyboardInterrupt.
- No engine: a ConfigError within seconds, never an attempt to download one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import dagger
from evalhub import __version__
from evalhub.adapters.executors.bounded import run_bounded
from evalhub.adapters.executors.dagger_image import runner_container
from evalhub.adapters.redact_files import redact_tree
from evalhub.core.container_job import (
    HOST_ALIAS,
    OUTPUT_DIR,
    RESULT_FILE,
    UNIT_FILE,
    ContainerJob,
    container_job,
)
from evalhub.core.errors import ConfigError
from evalhub.core.job import PROGRESS_PREFIX, JobResults, JobSpec, JobStatusUpdate, failed_result
from evalhub.core.project import DaggerSettings
from evalhub.core.redact import Redactor
from evalhub.core.runner_image import RunnerImage, runner_image
from evalhub.core.secrets import WELL_KNOWN, secret_values
from evalhub.core.unit_env import OFFLINE, key_variables, spec_variables
from evalhub.ports import ExecutionEvents

ATTEMPT_VARIABLE = "EVALHUB_ATTEMPT"
CLI_VARIABLE = "_EXPERIMENTAL_DAGGER_CLI_BIN"  # where dagger-io looks for the CLI it starts
NO_ENGINE_HINT = (
    "install the Dagger CLI and run `dagger run evalhub apply` (or name it in "
    "executors.dagger.cli), or use `execution: {executor: local}`"
)


class EngineUnavailable(Exception):
    """The engine cannot be reached or went away: every unit still to run fails with this."""


def engine_available(settings: DaggerSettings) -> str | None:
    """How evalhub will reach an engine ("session" or the CLI's path); ConfigError if it
    cannot. dagger-io would otherwise try to download a CLI (and fail slowly offline)."""
    if os.environ.get("DAGGER_SESSION_PORT") and os.environ.get("DAGGER_SESSION_TOKEN"):
        return "session"
    cli = settings.cli or shutil.which("dagger")
    if cli and Path(cli).is_file():
        return cli
    raise ConfigError(
        "the Dagger executor needs a Dagger engine: no session (DAGGER_SESSION_PORT) and no "
        "Dagger CLI" + (f" at {settings.cli}" if settings.cli else " on PATH"),
        NO_ENGINE_HINT,
    )


class DaggerExecutor:
    def __init__(
        self,
        settings: DaggerSettings,
        concurrency: int = 2,
        protected: Collection[str] = WELL_KNOWN,
    ) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.protected = frozenset(protected)
        self.cli = engine_available(settings)

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        return asyncio.run(self._run_all(jobs, events))

    def _config(self) -> dagger.Config:
        timeout = dagger.Timeout(None, connect=self.settings.connect_timeout_seconds)
        # No retries: an engine that went away fails the units now, not after a backoff loop.
        return dagger.Config(timeout=timeout, retry=None)

    async def _run_all(
        self, jobs: Sequence[JobSpec], events: ExecutionEvents
    ) -> dict[str, JobResults]:
        if self.cli != "session" and self.cli is not None:
            os.environ[CLI_VARIABLE] = self.cli
        try:
            # Closing the connection (however run_bounded ends, Ctrl-C included) ends the
            # session: the engine cancels whatever its requests still ran.
            async with dagger.Connection(self._config()) as client:
                session = _Session(client, self, events)
                return await run_bounded(jobs, self.concurrency, session.run_one)
        except dagger.ClientConnectionError as exc:
            raise ConfigError(f"cannot reach the Dagger engine: {exc}", NO_ENGINE_HINT) from None
        except dagger.ProvisionError as exc:
            raise ConfigError(f"cannot start a Dagger engine: {exc}", NO_ENGINE_HINT) from None


class _Session:
    """One engine session: images built once per definition, units run against them."""

    def __init__(
        self, client: dagger.Client, executor: DaggerExecutor, events: ExecutionEvents
    ) -> None:
        self.client = client
        self.executor = executor
        self.events = events
        self.images: dict[str, asyncio.Task[tuple[dagger.Container, dict[str, Any]]]] = {}
        self.gone: str | None = None  # why the engine is unusable, once it is

    async def image(self, image: RunnerImage) -> tuple[dagger.Container, dict[str, Any]]:
        """The built runner image and what the environment record says of it (one build per
        definition, shared by the units that use it)."""
        key = image.key()
        if key not in self.images:
            self.images[key] = asyncio.create_task(self._build(image))
        return await asyncio.shield(self.images[key])

    async def _build(self, image: RunnerImage) -> tuple[dagger.Container, dict[str, Any]]:
        ctr = runner_container(self.client, image)
        base = image.own or image.base
        described = {
            "executor": "dagger",
            "image": image.tag,
            "definition": image.key(),
            "base": await self.client.container().from_(base).image_ref(),
            # Building the image is what this asks for: the digest of its filesystem.
            "digest": await ctr.rootfs().digest(),
        }
        return ctr, described

    async def run_one(self, job: JobSpec) -> JobResults:
        workdir = Path(job.output_dir).parent
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "unit.json").write_text(job.model_dump_json(indent=2), encoding="utf-8")
        parent = dict(os.environ)
        protected = self.executor.protected
        redactor = Redactor(secret_values(parent, [*protected, *key_variables(job)]))
        image = runner_image(job.spec.provider, __version__, self.executor.settings.base_image)
        named = {n: parent[n] for n in spec_variables(job) if n in parent and n not in protected}
        inside = container_job(job, image, named)
        started = time.monotonic()
        try:
            if self.gone:
                raise EngineUnavailable(self.gone)
            base, described = await self.image(image)
        except (dagger.DaggerError, EngineUnavailable) as exc:
            return self._finish(job, failed_result(job, self._why(exc, "building the image")))
        except ConfigError as exc:
            return self._finish(job, failed_result(job, exc.message))
        self.events.started(job)
        try:
            result = await asyncio.wait_for(
                self._attempt(job, base, inside, named, redactor), job.timeout_seconds
            )
        except TimeoutError:
            result = failed_result(job, f"timed out after {job.timeout_seconds:g} s")
        except asyncio.CancelledError:
            redact_tree(Path(job.output_dir), redactor)
            self._finish(job, failed_result(job, "interrupted (the apply was stopped)"))
            raise
        except (dagger.DaggerError, EngineUnavailable) as exc:
            result = failed_result(job, self._why(exc, "running the unit"))
        redact_tree(Path(job.output_dir), redactor)
        result = result.model_copy(
            update={"error": redactor.optional(result.error), "runner": described}
        )
        if result.duration_seconds == 0.0:
            result = result.model_copy(update={"duration_seconds": time.monotonic() - started})
        return self._finish(job, result)

    def _finish(self, job: JobSpec, result: JobResults) -> JobResults:
        self.events.finished(job, result)
        return result

    def _why(self, exc: BaseException, doing: str) -> str:
        if isinstance(exc, dagger.TransportError | EngineUnavailable):
            self.gone = self.gone or f"the Dagger engine went away while {doing}: {exc}"
            return self.gone
        return f"Dagger failed {doing}: {exc}"

    async def _attempt(
        self,
        job: JobSpec,
        base: dagger.Container,
        inside: ContainerJob,
        named: dict[str, str],
        redactor: Redactor,
    ) -> JobResults:
        client = self.client
        ctr = base.with_new_file(UNIT_FILE, inside.job.model_dump_json(indent=2))
        for path, source in sorted(inside.files.items()):
            ctr = ctr.with_mounted_file(path, client.host().file(source))
        for path, source in sorted(inside.directories.items()):
            ctr = ctr.with_mounted_directory(path, client.host().directory(source))
        for name, value in sorted({**OFFLINE, **inside.env, "PYTHONUNBUFFERED": "1"}.items()):
            ctr = ctr.with_env_variable(name, value)
        for name in key_variables(job):
            if name in named:
                # The engine reads the value from the session client's environment: no query
                # carries it (setSecret would put it in the query's text).
                ctr = ctr.with_secret_variable(name, client.secret(f"env://{name}"))
        for tunnel in inside.tunnels:
            forward = dagger.PortForward(backend=tunnel.port, frontend=tunnel.port)
            ctr = ctr.with_service_binding(HOST_ALIAS, client.host().service([forward]))
        ran = ctr.with_env_variable(ATTEMPT_VARIABLE, uuid.uuid4().hex).with_exec(
            ["evalhub", "run-unit", UNIT_FILE, "--out", RESULT_FILE],
            expect=dagger.ReturnType.ANY,
        )
        code = await ran.exit_code()
        stdout, stderr = await ran.stdout(), await ran.stderr()
        self._log(job, stdout, stderr, redactor)
        out = Path(job.output_dir)
        with contextlib.suppress(dagger.QueryError):  # run-unit may have written nothing
            await ran.directory(OUTPUT_DIR).export(str(out))
        result_file = out.parent / "result.json"
        result_file.unlink(missing_ok=True)
        try:
            await ran.file(RESULT_FILE).export(str(result_file))
            return JobResults.model_validate_json(result_file.read_text(encoding="utf-8"))
        except (dagger.QueryError, OSError, ValidationError):
            tail = [line for line in stderr.strip().splitlines() if line][-5:]
            detail = (": " + " | ".join(redactor.text(line) for line in tail)) if tail else ""
            return failed_result(job, f"run-unit exited {code} without a result{detail}")

    def _log(self, job: JobSpec, stdout: str, stderr: str, redactor: Redactor) -> None:
        """run-unit.log as the local executor writes it; progress lines become events."""
        with (Path(job.output_dir).parent / "run-unit.log").open("w", encoding="utf-8") as log:
            log.write(redactor.text(stdout))
            for line in stderr.splitlines(keepends=True):
                if not line.startswith(PROGRESS_PREFIX):
                    log.write(redactor.text(line))
                    continue
                with contextlib.suppress(ValidationError):
                    update = JobStatusUpdate.model_validate_json(line[len(PROGRESS_PREFIX) :])
                    message = redactor.text(update.message)
                    self.events.progress(job, update.model_copy(update={"message": message}))
