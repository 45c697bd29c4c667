"""Where `evalhub serve` (and `evalhub mcp`) keep their jobs: one JSON file per job and its log,
under `.evalhub/<kind>/jobs/`, each written atomically, owned by one process at a time.

Ownership is a lock held for the owner's life: a second server on the same project is
refused, rather than allowed to fail the first one's running jobs as interrupted."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from evalhub.app import compose
from evalhub.app.project import Project
from evalhub.core.api import BenchmarkStatus, JobRequest, JobResults, MessageInfo, OverallState
from evalhub.core.errors import ConfigError


class StoredJob(BaseModel):
    """A job as the server keeps it on disk: the request, and what became of it."""

    id: str
    created_at: str
    updated_at: str
    request: JobRequest
    evaluation: str
    state: OverallState = "pending"
    message: MessageInfo
    benchmarks: list[BenchmarkStatus]
    results: JobResults | None = None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class JobStore:
    def __init__(self, project: Project, kind: str) -> None:
        self.dir = project.state_dir / kind / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._held = contextlib.ExitStack()

        def busy() -> None:
            raise ConfigError(
                f"another evalhub {kind} is serving this project's jobs "
                f"({compose.display(self.dir)})",
                "stop it first; one server per project keeps every job's state honest",
            )

        self._held.enter_context(compose.file_lock(self.dir / ".owner.lock", busy))

    def release(self) -> None:
        self._held.close()

    def load(self) -> Iterator[StoredJob]:
        """Every job kept, oldest first (files that are not jobs are left alone)."""
        for path in sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                yield StoredJob.model_validate_json(path.read_bytes())
            except (OSError, ValidationError):
                continue

    def save(self, job: StoredJob) -> None:
        compose.write_atomic(self._path(job.id), job.model_dump_json(indent=1).encode())

    def delete(self, job_id: str) -> None:
        for path in (self._path(job_id), self._log_path(job_id)):
            path.unlink(missing_ok=True)

    def log(self, job_id: str, line: str) -> None:
        with self._log_path(job_id).open("a", encoding="utf-8") as out:
            out.write(f"{now()} {line}\n")

    def log_lines(self, job_id: str) -> list[str]:
        try:
            return self._log_path(job_id).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def _path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.json"

    def _log_path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.log"
