"""The report's pure parts: the trend and its regressions, the envelope read from layers, the
MLflow links, the chart's marks, and the HTML and markdown renderings."""

from __future__ import annotations

import json
from typing import Any

from evalhub.core.findings import failed, passed, skipped
from evalhub.core.gate import GateReport, GateRow, PolicyGate
from evalhub.core.ledger import LedgerEntry, parse
from evalhub.core.markup import escape
from evalhub.core.render_report import report_html, report_markdown
from evalhub.core.report_chart import chart
from evalhub.core.report_data import (
    EvaluationReport,
    FailedUnit,
    Report,
    Trust,
    envelope,
    run_links,
    trend,
)
from tests.app.test_ledger import entry_data


def entry(aggregate: float, verdict: str = "pass", **changes: Any) -> LedgerEntry:
    data = entry_data()
    data.update(aggregate=aggregate, verdict=verdict, **changes)
    return parse(json.dumps(data))


def with_gates(e: LedgerEntry, max_regression: float | None) -> LedgerEntry:
    return e.model_copy(
        update={"gates": e.gates.model_copy(update={"max_regression": max_regression})}
    )


def test_regressions_are_measured_against_the_last_passing_result() -> None:
    points = trend(
        [
            ("c1" * 20, 1, with_gates(entry(0.80), 0.05)),
            ("c2" * 20, 2, with_gates(entry(0.50, "fail"), 0.05)),  # 0.30 below 0.80
            ("c3" * 20, 3, with_gates(entry(0.78), 0.05)),  # 0.02 below 0.80 (not 0.50)
            ("c4" * 20, 4, with_gates(entry(0.70), 0.05)),  # 0.08 below 0.78
        ]
    )
    assert [p.regression is not None for p in points] == [False, True, False, True]
    assert points[1].regression and "fell by 0.3000, more than 0.05" in points[1].regression
    assert points[3].regression and "0.7000 against 0.7800" in points[3].regression


def test_without_max_regression_any_drop_is_marked_and_said_so() -> None:
    points = trend(
        [("a" * 40, 1, entry(0.8)), ("b" * 40, 2, entry(0.79)), ("c" * 40, 3, entry(0.79))]
    )
    assert points[1].regression is not None and "(no max_regression set)" in points[1].regression
    assert points[2].regression is None  # against the last pass, 0.79 itself
    assert trend([("a" * 40, 1, entry(0.8)), ("b" * 40, 2, entry(0.8))])[1].regression is None


def test_the_envelope_comes_from_verified_layers_only() -> None:
    e = entry(0.8)
    spec = {
        "units": [
            {
                "key": "returns-qa",
                "provider": {"adapter": "lm-eval", "version": "0.4.13", "image": "img@sha256:1"},
                "files": {"data/qa.jsonl": "sha256:aa"},
            }
        ]
    }
    env = {"python": "3.11.7", "os": "Linux", "gpus": []}
    layers = {"spec.json": json.dumps(spec).encode(), "environment.json": json.dumps(env).encode()}
    verified = envelope(e, layers)
    assert verified.verified and verified.environment == env
    unit = {u.key: u for u in verified.units}
    assert unit["returns-qa"].framework_version == "0.4.13"
    assert unit["returns-qa"].image == "img@sha256:1"
    assert dict(unit["returns-qa"].datasets) == {"data/qa.jsonl": "sha256:aa"}
    assert unit["refusals"].adapter is None  # not in the spec layer: unknown, not invented
    unverified = envelope(e, None)
    assert not unverified.verified and unverified.environment == {}
    assert [u.fingerprint for u in unverified.units] == ["cd" * 32, "ef" * 32]


def test_mlflow_links_use_the_configured_uri() -> None:
    data = entry_data()
    data["mlflow"] = {
        "tracking_uri": "https://mlflow.example.com/",
        "run_id": "r1",
        "unit_runs": {"returns-qa": "u1"},
    }
    links = run_links(parse(json.dumps(data)))
    assert [(x.label, x.target, x.url) for x in links] == [
        ("evaluation", "https://mlflow.example.com/#/runs/r1", True),
        ("returns-qa", "https://mlflow.example.com/#/runs/u1", True),
    ]
    data["mlflow"]["tracking_uri"] = "sqlite:///.evalhub/mlflow.db"
    (first, _) = run_links(parse(json.dumps(data)))
    assert (first.target, first.url) == ("runs:/r1 in sqlite:///.evalhub/mlflow.db", False)


def test_the_chart_has_one_mark_per_benchmark_and_per_revision() -> None:
    e = entry(0.8)
    points = trend([(f"{i:040x}", i, entry(0.5 + i / 10)) for i in range(3)])
    svg = chart("e-q", "quality <&>", e.benchmarks, points)
    assert svg.count('class="mark benchmark') == 2 and svg.count('class="mark revision') == 3
    assert 'data-benchmark="returns-qa" data-score="0.6667"' in svg
    assert 'data-aggregate="0.7000"' in svg and "quality &lt;&amp;&gt;" in svg
    assert "<desc" in svg and "Aggregate over history" in svg
    assert escape("a\"'<") == "a&quot;&#x27;&lt;"


def report() -> Report:
    ok = entry(0.8)
    bad = entry(0.4, "fail", reasons=["aggregate 0.400 is below min_score 0.5"])
    gate = GateReport(
        [
            PolicyGate(
                "promote",
                "assistant",
                [
                    GateRow(
                        "quality",
                        [
                            passed("recorded", "r"),
                            failed("fresh", "stale: x|y"),
                            skipped("age", "-"),
                        ],
                    )
                ],
            )
        ]
    )
    trust = Trust(True, True, "signed by ci (sha256:k)", reference="oci-layout:x:t@sha256:d")
    return Report(
        (
            EvaluationReport(
                "quality",
                ok,
                trust=trust,
                trend=trend([("a" * 40, 1, ok), ("b" * 40, 2, entry(0.7))]),
            ),
            EvaluationReport(
                "safety",
                bad,
                trust=Trust(False, False, "no attestation is attached"),
                failed=(FailedUnit("refusals", "HTTP 500 (MLflow run r9)"),),
            ),
            EvaluationReport("latency", None, problem="no ledger entry for 'latency'"),
        ),
        gate,
        revision="f" * 40,
    )


def test_markdown_report() -> None:
    text = report_markdown(report())
    lines = text.splitlines()
    assert lines[0] == "## evalhub report"
    assert "### Policy `promote` — model `assistant`: may be promoted? ❌ no" in lines
    assert "| `quality` | ✅ | ❌ | — | — | — | — |" in lines
    assert "- `quality` **fresh**: stale: x\\|y" in lines  # a pipe cannot break the table
    assert "| `quality` | ✅ pass | 0.8000 | `assistant` | ✅ |" in lines
    assert "| `safety` | ❌ fail | 0.4000 | `assistant` | ❌ |" in lines
    assert "| `latency` | ❌ not recorded | — | `—` | ❌ |" in lines
    assert "### ✅ `quality`: pass, aggregate 0.8000" in lines
    assert "Trend: `v1@aaaaaaa` 0.8000 → **▼ `v1@bbbbbbb` 0.7000 (regression)**" in lines
    assert "Trust: signed ✅, verified ✅ — signed by ci (sha256:k)" in lines
    assert "- aggregate 0.400 is below min_score 0.5" in lines
    assert "- `refusals`: HTTP 500 (MLflow run r9)" in lines
    assert "### `latency`: not recorded" in lines
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_html_report_says_everything_in_words_too() -> None:
    html = report_html(report())
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "default-src 'none'" in html  # the page may request nothing
    assert html.count("<svg") == 2  # one chart per recorded evaluation
    assert 'May this model be promoted? <strong class="bad">✘ no</strong>' in html
    assert '<span class="verdict pass">✔ PASS</span>' in html
    assert '<span class="verdict fail">✘ FAIL</span>' in html
    assert "✘ NOT RECORDED" in html and "no ledger entry for &#x27;latency&#x27;" in html
    assert "HTTP 500 (MLflow run r9)" in html
    assert "▼ the aggregate fell by 0.1000" in html
