"""Progress of an apply, like Terraform's: one line per event (an environment built, a unit
started, a quarter of its samples done, a unit finished), and on a terminal a live bar of the
units (done of the real total) with a row per running unit showing the progress its adapter
reports. Without a terminal (CI, a pipe) only the plain lines, never wrapped.

The live bar starts only after the plan was shown and confirmed (`begin`), so it never draws
over the question."""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from evalhub.cli.output import console_redactor, err
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
from evalhub.core.render_progress import (
    coverage,
    finished_line,
    progress_line,
    seconds,
    should_report,
)


def is_live() -> bool:
    """Draw a live bar: stderr is a terminal that can redraw, and this is not CI."""
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stderr.isatty()


class ApplyDisplay:
    """ExecutionEvents and EnvironmentEvents (evalhub.ports) on the console."""

    def __init__(self, live: bool | None = None) -> None:
        self.live = is_live() if live is None else live
        self.console = Console(stderr=True, highlight=False)
        self.bar: Progress | None = None
        self.units: TaskID | None = None
        self.rows: dict[str, TaskID] = {}  # running unit or environment -> its row
        self.quarters: dict[str, int | None] = {}
        self.started_at: dict[str, float] = {}
        self.done = self.failed = self.total = 0
        self._lock = threading.Lock()

    def __enter__(self) -> ApplyDisplay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.stop()

    def begin(self, total: int) -> None:
        """The plan was confirmed: `total` distinct units will run."""
        self.total = total
        if not self.live or self.bar is not None:
            return
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),  # n/total, blank while the total is unknown
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.units = self.bar.add_task("[bold]units[/]", total=total, count=f"0/{total}", detail="")
        self.bar.start()

    # -- lines ---------------------------------------------------------------------------------

    def line(self, text: str, style: str = "") -> None:
        text = console_redactor().text(text)
        if self.bar is not None:  # above the live rows; outside text must not parse as markup
            self.bar.console.print(f"[{style}]{escape(text)}[/]" if style else escape(text))
        else:
            err(text)

    def _row(self, key: str, description: str, total: float | None = None) -> None:
        if self.bar is not None and key not in self.rows:
            self.rows[key] = self.bar.add_task(
                escape(description), total=total, count="", detail=""
            )

    def _drop(self, key: str) -> None:
        row = self.rows.pop(key, None)
        if self.bar is not None and row is not None:
            self.bar.remove_task(row)

    def _refresh(self) -> None:
        if self.bar is not None and self.units is not None:
            running = sum(1 for k in self.rows if not k.startswith("env:"))
            detail = f"{running} running, {self.failed} failed"
            count = f"{self.done}/{self.total}"
            self.bar.update(self.units, completed=self.done, count=count, detail=detail)

    # -- EnvironmentEvents ---------------------------------------------------------------------

    def environment_step(self, name: str, step: str) -> None:
        with self._lock:
            key = f"env:{name}"
            if key not in self.started_at:
                self.started_at[key] = time.monotonic()
                self.line(f"{name}: building (once; later applies reuse it)…")
                self._row(key, name)
            if self.bar is not None:
                self.bar.update(self.rows[key], detail=escape(step))
            else:
                self.line(f"{name}: {step}")

    def environment_done(self, name: str, error: str | None) -> None:
        with self._lock:
            key = f"env:{name}"
            took = seconds(time.monotonic() - self.started_at.pop(key, time.monotonic()))
            self._drop(key)
            if error:
                self.line(f"{name}: failed after {took}: {error}", "red")
            else:
                self.line(f"{name}: built in {took}", "green")

    # -- ExecutionEvents -----------------------------------------------------------------------

    def started(self, job: JobSpec) -> None:
        with self._lock:
            self.line(f"{job.unit}: running ({job.spec.provider.adapter})…")
            self._row(job.unit, job.unit)
            self._refresh()

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None:
        with self._lock:
            if self.bar is not None:
                row = self.rows.get(job.unit)
                if row is not None:
                    detail = escape(update.message or update.phase.replace("_", " "))
                    completed = update.completed or 0
                    count = f"{completed}/{update.total}" if update.total else ""
                    self.bar.update(
                        row, total=update.total, completed=completed, count=count, detail=detail
                    )
                return
            report, self.quarters[job.unit] = should_report(update, self.quarters.get(job.unit))
            if report:
                self.line(progress_line(job.unit, update))

    def finished(self, job: JobSpec, result: JobResults) -> None:
        with self._lock:
            self._drop(job.unit)
            self.done += 1
            found = coverage(result)
            if result.status != "succeeded":
                self.failed += 1
                style = "red"
            elif found is not None and not found.confident:
                style = "yellow"
            else:
                style = "green"
            self.line(finished_line(job.unit, result), style)
            self._refresh()
