"""`executor: dagger` end to end: the real `evalhub` CLI drives the real `dagger-io` SDK over its
wire protocol against the session fake (tests/dagger_engine), which checks every query against
Dagger's schema and really runs each unit's `evalhub run-unit` in a private mount namespace.
The same checks against a real engine: dagger/README.md (`make dagger-e2e`)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import graphql
import pytest

from tests.conftest import run_cli
from tests.dagger_engine.engine import Engine, running_engine, stop
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, recorded_units, unit_runs

SECRET = "sk-evalhub-dagger-" + "q" * 24
RUN_UNIT = ["evalhub", "run-unit", "/evalhub/unit.json", "--out", "/evalhub/result.json"]
IDENTITY_FILES = {"evals/data/qa.jsonl", "evals/data/refusals.jsonl"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the session fake runs units as root")


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    with running_engine() as (engine, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield engine


def dagger_project(root: Path, url: str) -> Path:
    make_project(root, url)
    (root / "evalhub.yaml").write_text(
        "specs: [evals]\nexecutors: {concurrency: 2, default: dagger}\n"
    )
    return root


def apply(root: Path, *args: str) -> tuple[int, str]:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=300)
    assert "Traceback" not in result.output, result.output
    return result.code, result.output


def recorded_runs(root: Path) -> list[tuple[str, str, str]]:
    """unit_runs, also of a store that was never written (no table yet)."""
    try:
        return unit_runs(root)
    except sqlite3.OperationalError:
        return []


def units_run(engine: Engine) -> int:
    return sum(1 for argv in engine.executions if argv == RUN_UNIT)


def scores(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that do not measure time."""
    return {k: v for k, v in metrics.items() if not k.startswith(("duration", "latency"))}


def host_paths(engine: Engine) -> set[str]:
    """Every host path a query asked the engine to read (host.file / host.directory)."""
    found: set[str] = set()

    def walk(node: graphql.SelectionSetNode | None, under_host: bool) -> None:
        for field in node.selections if node else ():
            if not isinstance(field, graphql.FieldNode):
                continue  # the introspection query's fragments
            if under_host and field.name.value in ("file", "directory"):
                path = next(a.value for a in field.arguments if a.name.value == "path")
                assert isinstance(path, graphql.StringValueNode)
                found.add(path.value)
            walk(field.selection_set, field.name.value == "host")

    for query in engine.queries:
        for definition in graphql.parse(query["query"]).definitions:
            if isinstance(definition, graphql.OperationDefinitionNode):
                walk(definition.selection_set, False)
    return found


def test_a_dagger_apply_records_what_a_local_apply_records(tmp_path: Path, engine: Engine) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        local = make_project(tmp_path / "local", url)
        code, output = apply(local)
        assert code == 0, output
        root = dagger_project(tmp_path / "dagger", url)
        code, output = apply(root)
        assert code == 0, output
        assert units_run(engine) == 2
        # The key reached the endpoint from inside the container (as a Dagger secret).
        sent = [{k.lower(): v for k, v in h.items()} for h in script.headers[-5:]]
        assert [h.get("authorization") for h in sent] == [f"Bearer {SECRET}"] * 5
        # Identity does not change with the executor: same fingerprints, same scores.
        assert unit_runs(root) == unit_runs(local)
        by_local, by_dagger = recorded_units(local), recorded_units(root)
        for name, recorded in by_dagger.items():
            assert scores(recorded.metrics) == scores(by_local[name].metrics)
            assert recorded.artifacts.keys() == by_local[name].artifacts.keys()  # raw output
        # A second apply runs nothing, in the engine either.
        code, output = apply(root)
        assert code == 0 and "No changes." in output, output
        assert units_run(engine) == 2 and script.generations == 10
    # Only the unit's identity files (and the checkout for evalhub's wheel) entered the engine.
    reads = {Path(p) for p in host_paths(engine)}
    identity = {(root / name).resolve() for name in IDENTITY_FILES}
    assert identity <= reads
    assert reads - identity == {Path(__file__).resolve().parents[2]}
    # The API key is in no query the engine received.
    assert all(SECRET not in json.dumps(q) for q in engine.queries)
    assert engine.queries, "the engine received no query"


def test_the_environment_record_names_the_runner_image(tmp_path: Path, engine: Engine) -> None:
    with fake_openai(Script(answer=answer)) as (url, _):
        root = dagger_project(tmp_path, url)
        code, output = apply(root)
        assert code == 0, output
    environments = list((root / ".evalhub" / "artifacts").rglob("environment.json"))
    assert len(environments) == 2
    runners = [json.loads(p.read_text())["runner"] for p in environments]
    assert runners[0] == runners[1]  # one image for the provider, built once
    assert runners[0]["executor"] == "dagger"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", runners[0]["digest"])
    assert runners[0]["base"].startswith("docker.io/library/python:3.11-slim@sha256:")
    assert runners[0]["image"].startswith("evalhub-runner:")
    # The image was built once: one wheel, one install.
    assert sum(1 for a in engine.executions if a[:2] == ["pip", "install"]) == 1


def test_a_failed_unit_is_a_failed_result_and_its_retry_runs_again(
    tmp_path: Path, engine: Engine
) -> None:
    with fake_openai(Script(answer=answer, always=500)) as (url, script):
        root = dagger_project(tmp_path, url)
        code, output = apply(root)
        assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"], output
        assert "500" in output
        assert units_run(engine) == 2
        script.always = None
        code, output = apply(root)
        assert code == 0, output
        # Not served from the engine's cache: each retry ran the unit again.
        assert units_run(engine) == 4
    finished = [n for n, _, s in unit_runs(root) if s == "FINISHED"]
    assert sorted(finished) == ["quality/refusals", "quality/returns-qa"]


def test_no_engine_is_a_clear_error_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + "/usr/bin:/bin")
    root = dagger_project(tmp_path, "http://127.0.0.1:9/v1")
    started = time.monotonic()
    code, output = apply(root)
    assert time.monotonic() - started < 30
    assert code == 1
    assert "needs a Dagger engine" in output and "executor: local" in output
    assert recorded_runs(root) == []  # nothing ran, nothing recorded


def test_a_unit_over_its_time_limit_is_stopped_and_failed(tmp_path: Path, engine: Engine) -> None:
    with fake_openai(Script(answer=slow(3.0))) as (url, _):
        root = dagger_project(tmp_path, url)
        evaluation = root / "evals" / "evaluations.yaml"
        evaluation.write_text(evaluation.read_text() + "  execution: {timeout_seconds: 2}\n")
        code, output = apply(root)
    assert code == 1 and "timed out after 2 s" in output, output
    assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]
    _wait_for(lambda: not engine._processes)  # the engine stopped what the request ran


def test_the_engine_going_away_fails_the_units_with_the_reason(
    tmp_path: Path, engine: Engine
) -> None:
    with fake_openai(Script(answer=slow(2.0))) as (url, script):
        root = dagger_project(tmp_path, url)
        proc = _apply_in_background(root)
        _wait_for(lambda: script.generations > 0)
        stop(engine)
        output = proc.communicate(timeout=120)[0]
    assert "Traceback" not in output
    assert "engine went away" in output, output
    assert [s for _, _, s in unit_runs(root)] == ["FAILED", "FAILED"]


def test_ctrl_c_cancels_the_session_and_exits_130(tmp_path: Path, engine: Engine) -> None:
    with fake_openai(Script(answer=slow(2.0))) as (url, script):
        root = dagger_project(tmp_path, url)
        proc = _apply_in_background(root)
        _wait_for(lambda: script.generations > 0)
        os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
        assert proc.returncode == 130, output
        assert "Traceback" not in output
        # The engine cancelled what the session ran: no unit process is left.
        _wait_for(lambda: not engine._processes)
        assert not {n for n, _, s in unit_runs(root) if s == "FINISHED"} >= {
            "quality/refusals",
            "quality/returns-qa",
        }
        script.answer = answer
        code, output = apply(root)
        assert code == 0, output
    finished = [n for n, _, s in unit_runs(root) if s == "FINISHED"]
    assert sorted(finished) == ["quality/refusals", "quality/returns-qa"]  # exactly once each


def slow(seconds: float) -> Callable[[str], str]:
    """The example answers, each after `seconds`."""

    def answering(prompt: str) -> str:
        time.sleep(seconds)
        return answer(prompt)

    return answering


def _apply_in_background(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes", "-j", "1"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(condition: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    assert condition(), "timed out"  # type: ignore[operator]
