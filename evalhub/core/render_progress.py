"""What an apply says while it runs, one line per event, Terraform-style: `NAME: what happened`.

Pure: the console (evalhub/cli/progress.py) decides where the lines go and whether a live bar
is drawn; these functions decide what the lines say, so CI logs and terminals read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalhub.core.job import JobResults, JobStatusUpdate

# A unit whose primary metric was judged on fewer than this share of its samples (a judge that
# wrote nothing gradable) is shown as a low-confidence score, never as a plain one.
CONFIDENT_SHARE = 0.5


@dataclass(frozen=True)
class Coverage:
    """How many of a unit's samples its primary metric could judge."""

    judged: int
    total: int

    @property
    def confident(self) -> bool:
        return self.total > 0 and self.judged / self.total >= CONFIDENT_SHARE


def coverage(result: JobResults) -> Coverage | None:
    """From the `<metric>_judged` / `<metric>_unjudged` counts a judged metric reports (RAGAS);
    None when the metric is not judged that way."""
    judged = result.metrics.get(f"{result.primary_metric}_judged")
    unjudged = result.metrics.get(f"{result.primary_metric}_unjudged")
    if judged is None or unjudged is None:
        return None
    return Coverage(int(judged), int(judged + unjudged))


def seconds(value: float) -> str:
    """12.3 s, 4m05s, 1h02m."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def finished_line(unit: str, result: JobResults) -> str:
    """`quality/returns-qa: succeeded after 12.3 s, score 0.667 (30 samples)`."""
    took = seconds(result.duration_seconds)
    if result.status != "succeeded":
        return f"{unit}: failed after {took}: {result.error or 'no reason given'}"
    samples = f" ({result.samples} samples)" if result.samples else ""
    if result.score is None:
        return f"{unit}: succeeded after {took}{samples}"
    found = coverage(result)
    if found is not None and not found.confident:
        return (
            f"{unit}: succeeded after {took}, LOW CONFIDENCE score {result.score:.3f}: only "
            f"{found.judged} of {found.total} samples could be judged"
        )
    return f"{unit}: succeeded after {took}, score {result.score:.3f}{samples}"


def progress_line(unit: str, update: JobStatusUpdate) -> str:
    """`quality/returns-qa: running 10/30` (or the adapter's own message)."""
    text = update.phase.replace("_", " ")
    if update.completed is not None and update.total:
        text += f" {update.completed}/{update.total}"
    if update.message:
        text += f": {update.message}"
    return f"{unit}: {text}"


def environment_name(providers: list[str], requirements: tuple[str, ...]) -> str:
    """An environment as the user knows it: the providers using it (`lm-eval`), else its
    first requirement."""
    if providers:
        return "environment " + ", ".join(sorted(set(providers)))
    more = f" (+{len(requirements) - 1})" if len(requirements) > 1 else ""
    return f"environment {requirements[0]}{more}"


def should_report(update: JobStatusUpdate, last: int | None) -> tuple[bool, int | None]:
    """Plain output (CI): a progress line when a unit's phase changes or it passes another
    quarter of its work, not one per sample. `last` is the quarter reported last (None: none)."""
    if update.completed is None or not update.total:
        return True, last
    quarter = min(4, 4 * update.completed // update.total)
    if last is not None and quarter <= last:
        return False, last
    return True, quarter
