"""The report's chart, as inline SVG written here: no library, no script, no network, and it
opens from file://. One chart per evaluation, two panels:

    scores      one bar per benchmark (its normalised score), its threshold as a tick, each
                bar labelled with its value and "pass"/"FAIL"; a failing bar is also hatched
    trend       one marker per ledger revision (the aggregate), joined by a line, labelled
                with the model revision and commit; a failing result is a square, a passing
                one a circle, a regression a downward triangle with the word "regression"

Nothing is told by colour alone (shape, hatching and words say it too), and the SVG carries
a <title> and <desc> for screen readers; the report puts the same numbers in tables beside it.
Every mark has class `mark` plus `benchmark` or `revision` and data-* attributes holding the
numbers shown, so tests (and people reading the source) can check them.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalhub.core.markup import escape
from evalhub.core.report_data import TrendPoint
from evalhub.core.result import BenchmarkResult

WIDTH = 720
ROW = 26  # height of one benchmark bar row
LABEL_W = 210  # left margin holding benchmark names
BAR_W = 380
TREND_H = 170
PAD = 16


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def _attr(value: object) -> str:
    return escape(str(value))


def chart(
    slug: str, name: str, benchmarks: Sequence[BenchmarkResult], trend: Sequence[TrendPoint]
) -> str:
    """The chart of one evaluation; `slug` makes its element ids unique in the page."""
    bars_h = PAD * 2 + 20 + ROW * max(1, len(benchmarks))
    height = bars_h + PAD + TREND_H + 8
    summary = _summary(name, benchmarks, trend)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{slug}-title {slug}-desc">',
        f'<title id="{slug}-title">{escape(name)}: scores against thresholds, and the '
        "aggregate over the ledger history</title>",
        f'<desc id="{slug}-desc">{escape(summary)}</desc>',
        "<defs>"
        f'<pattern id="{slug}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="fail-fill"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch"/></pattern></defs>',
        *_bars(slug, benchmarks),
        *_trend(trend, top=bars_h + PAD),
        "</svg>",
    ]
    return "\n".join(parts)


def _summary(name: str, benchmarks: Sequence[BenchmarkResult], trend: Sequence[TrendPoint]) -> str:
    scores = "; ".join(
        f"{b.key} {_num(b.score)}"
        + (f" (threshold {b.threshold:g})" if b.threshold is not None else "")
        + (" pass" if b.passed else " FAIL")
        for b in benchmarks
    )
    history = ", ".join(
        f"{p.model_revision}@{p.commit[:7]} {_num(p.entry.aggregate)}"
        + (" regression" if p.regression else "")
        for p in trend
    )
    return f"Scores of {name}: {scores or 'none'}. Aggregate over history: {history or 'none'}."


def _bars(slug: str, benchmarks: Sequence[BenchmarkResult]) -> list[str]:
    x0, y0 = LABEL_W, PAD + 20
    out = [
        f'<text x="{PAD}" y="{PAD + 6}" class="panel">Score per benchmark (0–1), '
        "threshold marked │</text>",
        f'<line x1="{x0}" y1="{y0 - 4}" x2="{x0}" y2="{y0 + ROW * len(benchmarks)}" class="axis"/>',
    ]
    for i, b in enumerate(benchmarks):
        y = y0 + i * ROW
        score = 0.0 if b.score is None else max(0.0, min(1.0, b.score))
        width = round(BAR_W * score, 1)
        fill = "pass-fill" if b.passed else "fail-bar"
        style = "" if b.passed else f' fill="url(#{slug}-hatch)"'
        verdict = "pass" if b.passed else "FAIL"
        out.append(
            f'<text x="{x0 - 8}" y="{y + 15}" class="label" text-anchor="end">'
            f"{escape(_clip(b.key, 28))}</text>"
        )
        out.append(
            f'<rect class="mark benchmark {fill}" x="{x0}" y="{y + 3}" width="{width}" '
            f'height="{ROW - 8}"{style} data-benchmark="{_attr(b.key)}" '
            f'data-score="{_attr(_num(b.score))}" data-passed="{str(b.passed).lower()}">'
            f"<title>{escape(b.key)}: {_num(b.score)} {verdict}</title></rect>"
        )
        if b.threshold is not None:
            tx = round(x0 + BAR_W * max(0.0, min(1.0, b.threshold)), 1)
            out.append(
                f'<line class="threshold" x1="{tx}" y1="{y}" x2="{tx}" y2="{y + ROW - 2}" '
                f'data-threshold="{b.threshold:g}"/>'
            )
        out.append(
            f'<text x="{x0 + BAR_W + 8}" y="{y + 15}" class="value">{_num(b.score)} '
            f"{verdict}"
            + (f" (min {b.threshold:g})" if b.threshold is not None else "")
            + "</text>"
        )
    return out


def _trend(points: Sequence[TrendPoint], top: float) -> list[str]:
    x0, x1 = LABEL_W, LABEL_W + BAR_W
    y_top, y_bottom = top + 24, top + TREND_H - 30
    out = [
        f'<text x="{PAD}" y="{top + 6}" class="panel">Aggregate per ledger revision '
        "(○ pass, □ fail, ▼ regression)</text>",
        f'<line x1="{x0}" y1="{y_bottom}" x2="{x1}" y2="{y_bottom}" class="axis"/>',
        f'<line x1="{x0}" y1="{y_top}" x2="{x0}" y2="{y_bottom}" class="axis"/>',
        f'<text x="{x0 - 6}" y="{y_top + 4}" class="tick" text-anchor="end">1</text>',
        f'<text x="{x0 - 6}" y="{y_bottom + 4}" class="tick" text-anchor="end">0</text>',
    ]
    if not points:
        out.append(
            f'<text x="{x0 + 10}" y="{(y_top + y_bottom) / 2}" class="label">'
            "no ledger history (not committed, or not a git repository)</text>"
        )
        return out
    step = (x1 - x0) / max(1, len(points) - 1) if len(points) > 1 else 0.0
    coords = []
    for i, point in enumerate(points):
        x = round(x0 + (step * i if len(points) > 1 else (x1 - x0) / 2), 1)
        value = point.entry.aggregate
        y = round(y_bottom - (y_bottom - y_top) * max(0.0, min(1.0, value or 0.0)), 1)
        coords.append((x, y, point))
    line = " ".join(f"{x},{y}" for x, y, p in coords if p.entry.aggregate is not None)
    if line:
        out.append(f'<polyline class="trend-line" points="{line}"/>')
    label_every = max(1, len(coords) // 12)  # at most ~12 axis labels; every mark stays
    for i, (x, y, point) in enumerate(coords):
        out.append(_marker(x, y, point))
        if i % label_every == 0 or i == len(coords) - 1:
            out.append(
                f'<text x="{x}" y="{y_bottom + 14}" class="tick" text-anchor="middle">'
                f"{escape(_clip(point.model_revision, 14))}</text>"
                f'<text x="{x}" y="{y_bottom + 26}" class="tick" text-anchor="middle">'
                f"{point.commit[:7]}</text>"
            )
    return out


def _marker(x: float, y: float, point: TrendPoint) -> str:
    entry = point.entry
    data = (
        f'data-commit="{point.commit}" data-revision="{_attr(point.model_revision)}" '
        f'data-aggregate="{_num(entry.aggregate)}" data-verdict="{entry.verdict}" '
        f'data-regression="{"true" if point.regression else "false"}"'
    )
    tip = (
        f"<title>{escape(point.model_revision)} at {point.commit[:12]}: "
        f"{_num(entry.aggregate)} {entry.verdict}"
        + (f"; regression: {escape(point.regression)}" if point.regression else "")
        + "</title>"
    )
    if point.regression:
        shape = (
            f'<polygon class="mark revision regression" points="{x - 7},{y - 6} {x + 7},{y - 6} '
            f'{x},{y + 7}" {data}>{tip}</polygon>'
            f'<text x="{x}" y="{y - 10}" class="flag" text-anchor="middle">regression</text>'
        )
    elif entry.verdict == "pass":
        shape = (
            f'<circle class="mark revision pass-fill" cx="{x}" cy="{y}" r="5" {data}>{tip}</circle>'
        )
    else:
        shape = (
            f'<rect class="mark revision fail-bar" x="{x - 5}" y="{y - 5}" width="10" '
            f'height="10" {data}>{tip}</rect>'
        )
    return shape


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
