"""Progress of an apply on the terminal: a live line of units done/running/failed (rich), and a
line per finished unit. Without a terminal, only the per-unit lines."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate


class ApplyDisplay:
    def __init__(self, total: int = 0) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.live = sys.stderr.isatty()
        self.running = 0
        self.failed = 0
        self.done = 0
        self.bar = Progress(
            TextColumn("[bold]units[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.task = self.bar.add_task("units", total=total or None, detail="")

    def __enter__(self) -> ApplyDisplay:
        self.bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def _refresh(self) -> None:
        detail = f"{self.running} running, {self.failed} failed"
        self.bar.update(self.task, completed=self.done, detail=detail)

    def started(self, job: JobSpec) -> None:
        self.running += 1
        self._refresh()

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None:
        # An executor's own phases before the unit runs (a Job queued by Kueue, a pod that
        # cannot be scheduled) get a line each: they explain a wait.
        if update.phase == "initializing" and update.message:
            self.console.print(f"  [dim]·[/] {escape(job.unit)}  {escape(update.message)}")
        self._refresh()

    def finished(self, job: JobSpec, result: JobResults) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        if result.status == "succeeded":
            score = f"score {result.score:.3f}" if result.score is not None else "done"
            self.console.print(
                f"  [green]✓[/] {escape(job.unit)}  {score}  ({result.duration_seconds:.1f} s)"
            )
        else:
            self.failed += 1
            # Names and errors are outside text: "[/x]" in one must print, not parse as markup.
            self.console.print(f"  [red]✗[/] {escape(job.unit)}  {escape(str(result.error))}")
        self._refresh()
