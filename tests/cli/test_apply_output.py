"""`evalhub apply` talks like Terraform: the plan, then the question (`[y/N]`, nothing drawn
over it), then one line per event (plain in CI, never wrapped); a saved plan applies without a
question; the report as JSON, markdown or JUnit XML; no signing key is said, not silent."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from evalhub.cli.progress import ApplyDisplay
from evalhub.core.job import JobResults, JobStatusUpdate
from evalhub.core.render_progress import finished_line, should_report
from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, unit_runs

KEY = "sk-evalhub-test-" + "q" * 24


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", KEY)
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


def result(status: str = "succeeded", **fields: object) -> JobResults:
    return JobResults.model_validate(
        {
            "fingerprint": "f" * 64,
            "status": status,
            "primary_metric": "faithfulness",
            "framework": "ragas",
            "duration_seconds": 12.34,
            **fields,
        }
    )


# -- the lines -----------------------------------------------------------------------------------


def test_a_mostly_unjudged_unit_is_not_shown_as_a_confident_score() -> None:
    judged = {"faithfulness": 0.5, "faithfulness_judged": 2.0, "faithfulness_unjudged": 8.0}
    line = finished_line("q/rag", result(score=0.5, samples=10, metrics=judged))
    assert line == (
        "q/rag: succeeded after 12.3 s, LOW CONFIDENCE score 0.500: only 2 of 10 samples "
        "could be judged"
    )
    mostly = {**judged, "faithfulness_judged": 8.0, "faithfulness_unjudged": 2.0}
    line = finished_line("q/rag", result(score=0.5, samples=10, metrics=mostly))
    assert line == "q/rag: succeeded after 12.3 s, score 0.500 (10 samples)"


def test_plain_progress_reports_quarters_not_every_sample() -> None:
    last = None
    reported = []
    for done in range(0, 41):
        update = JobStatusUpdate(phase="running", completed=done, total=40)
        report, last = should_report(update, last)
        if report:
            reported.append(done)
    assert reported == [0, 10, 20, 30, 40]


def test_plain_lines_are_never_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a terminal, a long error stays one line (rich would wrap it at 80 columns)."""
    from evalhub.core.job import JobSpec

    error = "the endpoint answered 503 " + "x" * 200
    job = JobSpec.model_construct(unit="quality/returns-qa", fingerprint="f" * 64)
    display = ApplyDisplay(live=False)
    display.begin(3)
    display.finished(job, result("failed", error=error))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"quality/returns-qa: failed after 12.3 s: {error}"]


# -- the command ---------------------------------------------------------------------------------


def test_without_a_terminal_apply_says_how_to_apply_a_saved_plan(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        asked = run_cli("apply", cwd=root)
        assert asked.code == 1
        assert "evalhub plan --out plan.json" in asked.stderr
        assert "evalhub apply plan.json" in asked.stderr
        assert script.generations == 0
        saved = run_cli("plan", "--out", "plan.json", cwd=root)
        assert saved.code == 0, saved.stderr
        # a saved plan was reviewed when saved: applied without a question (Terraform's contract)
        applied = run_cli("apply", "plan.json", cwd=root, timeout=300)
        assert applied.code == 0, applied.stderr
        assert script.generations == 5
    assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]
    # one plain line per event, in order per unit, and the real total (no `0/?`)
    err = applied.stderr
    for unit in ("quality/returns-qa", "quality/refusals"):
        started = err.index(f"{unit}: running (builtin)…")
        done = err.index(f"{unit}: succeeded after")
        assert started < done
    assert "0/?" not in err and "\x1b[" not in err
    # no signing key: said, with what to do
    assert "No signing key" in err and "evalhub keys generate" in err


def test_apply_json_junit_and_markdown(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path, url)
        applied = run_cli("apply", "--yes", "--format", "json", cwd=root, timeout=300)
    assert applied.code == 0, applied.stderr
    report = json.loads(applied.stdout)  # stdout holds the report only
    assert report["format_version"] == 1 and report["ok"] is True
    (evaluation,) = report["evaluations"]
    assert evaluation["evaluation"] == "quality" and evaluation["verdict"] == "pass"
    assert evaluation["run_id"]
    assert sorted(u["key"] for u in report["units"]) == ["refusals", "returns-qa"]
    assert any("evalhub keys generate" in n for n in report["notes"])

    from evalhub.core.render_apply import ApplyOutcome, SummaryRow, UnitRow, apply_junit

    outcome = ApplyOutcome(
        [SummaryRow("quality", "run", 2, 1, 0.4, "fail", ("aggregate 0.400 < 0.7",))],
        [
            UnitRow("quality", "returns-qa", "a" * 64, "succeeded", None, 0.8),
            UnitRow("quality", "refusals", "b" * 64, "failed", "endpoint <down> & out", None),
        ],
        [],
        ok=False,
    )
    suites = ElementTree.fromstring(apply_junit(outcome))
    assert (suites.get("tests"), suites.get("failures")) == ("3", "2")
    cases = {c.get("name"): c for c in suites.iter("testcase")}
    assert cases["returns-qa"].find("failure") is None
    failure = cases["refusals"].find("failure")
    assert failure is not None and failure.get("message") == "endpoint <down> & out"
    verdict = cases["verdict"].find("failure")
    assert verdict is not None and verdict.text == "aggregate 0.400 < 0.7"
    assert cases["returns-qa"].findtext("system-out") == "score 0.8000"
    # XML-hostile outside text (a quote, a newline, a control character) stays well-formed
    hostile = UnitRow("quality", "refusals", "b" * 64, "failed", 'a "b"\nc\x1bd', None)
    parsed = ElementTree.fromstring(apply_junit(ApplyOutcome(outcome.evaluations, [hostile], [])))
    (message,) = [
        f.get("message") for f in parsed.iter("failure") if f.text != "aggregate 0.400 < 0.7"
    ]
    assert message == 'a "b"\ncd'

    with fake_openai(Script(answer=answer)) as (url, _):
        markdown = run_cli("apply", "--yes", "--format", "markdown", cwd=root)
    assert markdown.code == 0
    assert markdown.stdout.startswith("### evalhub apply\n\nNo changes")


def read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} never appeared; the screen said:\n{seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_on_a_terminal_the_question_is_asked_before_any_progress_is_drawn(
    tmp_path: Path,
) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        main, child = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalhub.cli.main", "apply"],
            cwd=root,
            stdin=child,
            stdout=child,
            stderr=child,
            env={**env, "TERM": "xterm", "COLUMNS": "120"},
        )
        os.close(child)
        try:
            screen = read_until(main, b"[y/N]", time.monotonic() + 60)
            before = screen.decode(errors="replace")
            assert "Run these units? [y/N]" in before
            # a live display hides the cursor and erases lines as it redraws: none of it yet
            assert "\x1b[?25l" not in before and "\x1b[2K" not in before
            assert "0/?" not in before and script.generations == 0
            os.write(main, b"y\n")
            rest = read_until(main, b"evaluation ", time.monotonic() + 120)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main)
        after = rest.decode(errors="replace")
        assert "0/?" not in after
        assert "quality/returns-qa: succeeded after" in after
        assert script.generations == 5
