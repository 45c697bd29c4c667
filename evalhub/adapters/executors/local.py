"""The local executor: each unit is an `evalhub run-unit` subprocess.

Bounded concurrency, a time limit per unit, and Ctrl-C stops every unit (its process group) and
reports it as interrupted. A unit's files live in its work directory (the parent of the job's
output_dir): unit.json, result.json, run-unit.log and the adapter's output/.

A unit runs third-party code, so its process gets an allow-listed environment
(evalhub.core.unit_env: never the signing key, store or registry credentials, CI tokens), and
what it prints reaches run-unit.log only through the redactor (evalhub.core.redact).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path

from pydantic import ValidationError

from evalhub.adapters.executors.bounded import run_bounded
from evalhub.adapters.redact_files import redact_tree
from evalhub.core.job import PROGRESS_PREFIX, JobResults, JobSpec, JobStatusUpdate, failed_result
from evalhub.core.redact import Redactor
from evalhub.core.secrets import WELL_KNOWN, secret_values
from evalhub.core.unit_env import key_variables, unit_environment
from evalhub.ports import ExecutionEvents

LONGEST_LINE = 1 << 20  # a unit's output without a newline is written in pieces this long


class LocalExecutor:
    def __init__(
        self,
        concurrency: int = 2,
        python: str = sys.executable,
        protected: Collection[str] = WELL_KNOWN,
    ) -> None:
        """`protected`: the variables only this process may read (secrets.protected_variables
        of the project); a unit never gets them, and their values are masked in its output."""
        self.concurrency = concurrency
        self.python = python
        self.protected = frozenset(protected)

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        return asyncio.run(self._run_all(jobs, events))

    async def _run_all(
        self, jobs: Sequence[JobSpec], events: ExecutionEvents
    ) -> dict[str, JobResults]:
        return await run_bounded(jobs, self.concurrency, lambda job: self._run_one(job, events))

    async def _run_one(self, job: JobSpec, events: ExecutionEvents) -> JobResults:
        workdir = Path(job.output_dir).parent
        workdir.mkdir(parents=True, exist_ok=True)
        unit_file, result_file = workdir / "unit.json", workdir / "result.json"
        unit_file.write_text(job.model_dump_json(indent=2), encoding="utf-8")
        result_file.unlink(missing_ok=True)
        command = [self.python, "-m", "evalhub.cli.main", "run-unit", str(unit_file)]
        command += ["--out", str(result_file)]
        env = unit_environment(os.environ, job, self.protected)
        redactor = Redactor(secret_values(os.environ, [*self.protected, *key_variables(job)]))
        started = time.monotonic()
        with (workdir / "run-unit.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us; we stop the unit ourselves
            )
            # Recorded as started once the process runs, so the store's first (slow) write
            # overlaps the unit's work. If evalhub dies before this, nothing was recorded and
            # the unit simply runs again next time: never lost, never recorded twice.
            try:
                events.started(job)
            except BaseException:
                _kill(proc)
                await proc.wait()
                raise
            try:
                await asyncio.wait_for(
                    self._follow(proc, job, events, log, redactor), job.timeout_seconds
                )
            except TimeoutError:
                _kill(proc)
                await proc.wait()
                redact_tree(Path(job.output_dir), redactor)  # run-unit did not get to it
                result = failed_result(job, f"timed out after {job.timeout_seconds:g} s")
                events.finished(job, result)
                return result
            except asyncio.CancelledError:
                _kill(proc)
                await proc.wait()
                redact_tree(Path(job.output_dir), redactor)
                events.finished(job, failed_result(job, "interrupted (the apply was stopped)"))
                raise
        # run-unit masked its own key; this also masks whatever else the parent knows is secret.
        redact_tree(Path(job.output_dir), redactor)
        result = self._read_result(job, result_file, proc.returncode, workdir)
        result = result.model_copy(update={"error": redactor.optional(result.error)})
        if result.duration_seconds == 0.0:
            result = result.model_copy(update={"duration_seconds": time.monotonic() - started})
        events.finished(job, result)
        return result

    @staticmethod
    async def _follow(
        proc: asyncio.subprocess.Process,
        job: JobSpec,
        events: ExecutionEvents,
        log: object,
        redactor: Redactor,
    ) -> None:
        assert proc.stdout is not None and proc.stderr is not None

        async def stderr() -> None:
            assert proc.stderr is not None
            async for raw in _lines(proc.stderr):
                line = raw.decode("utf-8", "replace")
                if line.startswith(PROGRESS_PREFIX):
                    try:
                        update = JobStatusUpdate.model_validate_json(line[len(PROGRESS_PREFIX) :])
                    except ValidationError:
                        continue
                    update = update.model_copy(update={"message": redactor.text(update.message)})
                    events.progress(job, update)
                else:
                    log.write(redactor.bytes(raw))  # type: ignore[attr-defined]

        async def stdout() -> None:
            assert proc.stdout is not None
            async for raw in _lines(proc.stdout):
                log.write(redactor.bytes(raw))  # type: ignore[attr-defined]

        await asyncio.gather(stdout(), stderr())
        await proc.wait()

    @staticmethod
    def _read_result(job: JobSpec, path: Path, code: int | None, workdir: Path) -> JobResults:
        try:
            return JobResults.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            log = workdir / "run-unit.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            detail = (": " + " | ".join(tail)) if tail else ""
            return failed_result(job, f"run-unit exited {code} without a result{detail}")


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Whole lines (so a secret is never split between two writes), or pieces of
    LONGEST_LINE bytes of a line that never ends."""
    pending = b""
    while chunk := await stream.read(1 << 16):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line + b"\n"
        while len(pending) >= LONGEST_LINE:
            yield pending[:LONGEST_LINE]
            pending = pending[LONGEST_LINE:]
    if pending:
        yield pending


def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    # A unit that ignores SIGTERM is killed a moment later.
    loop = asyncio.get_running_loop()
    loop.call_later(5, _hard_kill, proc.pid)


def _hard_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
