"""The HTML report opened in a real headless Chromium (Debian `chromium`), from file://: it
renders without a console error, requests nothing but its own file, draws one chart per
evaluation with one mark per benchmark and per ledger revision, and the numbers it shows are
the ledger's. A screenshot is written outside the repository (EVALHUB_REPORT_SCREENSHOT names
where, default: the test's temporary directory)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_gitops import cli
from tests.app.test_gitops import endpoint as endpoint  # a fixture
from tests.app.test_gitops import environment as environment  # a fixture
from tests.app.test_report import build_history, history
from tests.browser import chromium, headless

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (.ci/run installs it)"),
]

MARKS = """JSON.stringify(Object.fromEntries([...document.querySelectorAll("section.evaluation")]
  .map((section) => [section.id, {
    charts: section.querySelectorAll("svg.chart").length,
    benchmarks: [...section.querySelectorAll(".mark.benchmark")].map(
      (m) => [m.dataset.benchmark, m.dataset.score]),
    revisions: [...section.querySelectorAll(".mark.revision")].map(
      (m) => [m.dataset.commit, m.dataset.aggregate, m.dataset.regression]),
    width: section.querySelector("svg.chart").getBoundingClientRect().width,
    verified: section.innerText.includes("Verified\\t✔ yes"),
  }])))"""


def test_the_report_in_a_real_browser(tmp_path: Path, endpoint: Any) -> None:
    root = build_history(tmp_path, endpoint, second=True)
    out = tmp_path / "out"
    assert cli(root, "report", "--out", str(out)).code == 0
    page = (out / "report.html").resolve()
    with headless(tmp_path / "profile") as browser:
        browser.send("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        shown = json.loads(browser.evaluate(MARKS))
        shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        requests = [r["request"]["url"] for r in browser.of("Network.requestWillBeSent")]
        console = browser.of("Runtime.consoleAPICalled")
        exceptions = browser.of("Runtime.exceptionThrown")
        logged = [e["entry"] for e in browser.of("Log.entryAdded")]
    target = Path(os.environ.get("EVALHUB_REPORT_SCREENSHOT", tmp_path / "report.png"))
    target.write_bytes(base64.b64decode(shot["data"]))
    assert target.stat().st_size > 10_000

    assert requests == [page.as_uri()], requests  # the page itself, nothing else
    assert not exceptions and not [c for c in console if c["type"] in ("error", "warning")]
    assert not [e for e in logged if e["level"] in ("error", "warning")], logged

    assert sorted(shown) == ["e-quality", "e-strict"]  # one chart per evaluation
    for name in ("quality", "strict"):
        current = json.loads((root / "results" / f"{name}.json").read_text())
        results = history(root, name)
        section = shown[f"e-{name}"]
        assert section["charts"] == 1 and section["width"] > 300
        assert section["benchmarks"] == [
            [b["key"], f"{b['score']:.4f}"] for b in current["benchmarks"]
        ]
        assert [r[:2] for r in section["revisions"]] == [
            [r["commit"], f"{r['aggregate']:.4f}"] for r in results
        ]
        assert section["verified"] is True
    # --policy narrows the report to what the Policy requires (promote: quality only).
    narrowed = json.loads(cli(root, "report", "--policy", "promote", "--format", "json").stdout)
    assert [e["evaluation"] for e in narrowed["evaluations"]] == ["quality"]
    # quality fell by 0.2222 at its third revision, more than its max_regression.
    assert [r[2] for r in shown["e-quality"]["revisions"]] == ["false", "false", "true", "false"]
