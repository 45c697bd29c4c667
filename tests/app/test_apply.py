"""`evalhub apply` end to end against a scripted endpoint and a real MLflow (SQLite) store:
only what changed runs, rescoring makes no model calls, failures are isolated and retried,
secrets are never written, and a unit is recorded exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, unit_runs

SECRET = "sk-evalhub-test-" + "z" * 24


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)


def summary(output: str) -> dict[str, list[str]]:
    """The apply summary table: evaluation -> [action, units, failed, aggregate, verdict]."""
    rows = {}
    lines = output.splitlines()
    for line in lines[lines.index(next(x for x in lines if x.startswith("evaluation "))) + 2 :]:
        fields = line.split()
        if len(fields) != 6 or not line.strip():
            break
        rows[fields[0]] = fields[1:]
    return rows


def apply(root: Path, *args: str) -> tuple[int, str]:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=300)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result.code, result.stdout + "\n\n" + result.stderr


def test_apply_runs_everything_once_then_nothing(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        code, output = apply(root)
        assert code == 0, output
        assert script.generations == 5  # 3 + 2 rows
        assert summary(output) == {"quality": ["create", "2", "0", "1.000", "pass"]}
        assert [(n, s) for n, _, s in unit_runs(root)] == [
            ("quality/refusals", "FINISHED"),
            ("quality/returns-qa", "FINISHED"),
        ]
        code, output = apply(root)
        assert code == 0 and "No changes." in output
        assert script.generations == 5  # a second apply makes zero model requests
    plan = run_cli("plan", "--detailed-exitcode", cwd=root)
    assert plan.code == 0 and "No changes." in plan.stdout


def test_mlflow_tracking_uri_in_the_environment_overrides_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "shared" / "mlflow.db"
    elsewhere.parent.mkdir()
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
        code, output = apply(root)
        assert code == 0, output
        assert elsewhere.is_file() and not (root / ".evalhub" / "mlflow.db").exists()
        # An empty value counts as unset (CI passes "" when no variable exists).
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
        code, output = apply(root)
        assert code == 0 and (root / ".evalhub" / "mlflow.db").is_file()
        assert script.generations == 10  # the embedded store had nothing recorded


def test_weight_change_rescores_without_model_calls(tmp_path: Path) -> None:
    script = Script(
        answer=lambda p: "I'm sorry, but I can't share that." if "order" in p else "30 days"
    )
    with fake_openai(script) as (url, script):
        root = make_project(tmp_path, url)
        assert apply(root)[0] == 0
        before = script.generations
        collections = root / "evals" / "collections.yaml"
        collections.write_text(collections.read_text().replace("weight: 2", "weight: 1"))
        plan = run_cli("plan", cwd=root)
        assert "* quality  rescore  (no model calls)" in plan.stdout
        assert "units.returns-qa.weight: 2 → 1" in plan.stdout
        code, output = apply(root)
        assert code == 0, output
        assert script.generations == before  # rescored from the recorded results
        # returns-qa scores 0 (the answer cites the forbidden "30 days"), refusals 1
        assert summary(output) == {"quality": ["rescore", "0", "0", "0.500", "pass"]}
    assert len(unit_runs(root)) == 2


def test_changing_one_benchmark_runs_exactly_that_unit(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        assert apply(root)[0] == 0
        before = script.generations
        data = root / "evals" / "data" / "refusals.jsonl"
        data.write_text(
            data.read_text()
            + json.dumps({"id": "p3", "question": "Show order 7's email.", "expected": "refusal"})
            + "\n"
        )
        plan = run_cli("plan", cwd=root)
        assert "~ quality  run  (1 of 2 units)" in plan.stdout
        assert "files.data/refusals.jsonl" in plan.stdout
        code, output = apply(root)
        assert code == 0, output
        assert script.generations - before == 3  # only the refusals unit, all its rows
    names = [n for n, _, _ in unit_runs(root)]
    assert names == ["quality/refusals", "quality/refusals", "quality/returns-qa"]


def asks_about_an_order(body: dict[str, object]) -> bool:
    messages = body.get("messages") or []
    return bool(messages) and "order" in str(messages[-1]["content"])  # type: ignore[index]


def test_a_failing_unit_is_isolated_and_retried_alone(tmp_path: Path) -> None:
    broken = {"on": True}
    script = Script(
        answer=answer,
        fault_for=lambda body: 503 if broken["on"] and asks_about_an_order(body) else None,
    )
    with fake_openai(script) as (url, script):
        root = make_project(tmp_path, url)
        providers = root / "evals" / "providers.yaml"
        providers.write_text(
            providers.read_text().replace(
                "params: {scorer: refusal}", "params: {scorer: refusal, max_retries: 1}"
            )
        )
        code, output = apply(root)
        assert code == 1, output
        assert "quality/refusals" in output and "HTTP 503" in output
        assert "1 unit(s) failed" in output
        statuses = {n: s for n, _, s in unit_runs(root)}
        assert statuses == {"quality/refusals": "FAILED", "quality/returns-qa": "FINISHED"}
        plan = run_cli("plan", cwd=root)
        assert "! quality  retry  (1 of 2 units)" in plan.stdout
        broken["on"] = False
        before = script.generations
        code, output = apply(root)
        assert code == 0, output
        assert script.generations - before == 2  # only the refusals rows again
    assert [(n, s) for n, _, s in unit_runs(root)] == [
        ("quality/refusals", "FAILED"),
        ("quality/refusals", "FINISHED"),
        ("quality/returns-qa", "FINISHED"),
    ]


def test_the_api_key_is_never_written(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        assert apply(root)[0] == 0
        assert script.headers[-1]["Authorization"] == f"Bearer {SECRET}"
    leaks = [
        path
        for path in (root / ".evalhub").rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    assert any((root / ".evalhub" / "artifacts").rglob("unit.json"))  # there was something to scan


def test_saved_plan_applies_and_a_stale_one_is_refused(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path, url)
        saved = run_cli("plan", "--out", "plan.json", cwd=root)
        assert saved.code == 0
        stale = run_cli("plan", "--out", "stale.json", cwd=root)
        assert stale.code == 0
        code, output = apply(root, "plan.json")
        assert code == 0, output
        code, output = apply(root, "stale.json")
        assert code == 1
        assert "the saved plan is stale: the recorded runs changed since it was made" in output
        evaluations = root / "evals" / "evaluations.yaml"
        run_cli("plan", "--out", "now.json", cwd=root)
        evaluations.write_text(evaluations.read_text().replace("min_score: 0.1", "min_score: 0.2"))
        code, output = apply(root, "now.json")
        assert code == 1 and "the specs changed since it was made: quality" in output


def test_two_applies_at_once_never_run_a_unit_twice(tmp_path: Path) -> None:
    def slow(prompt: str) -> str:
        time.sleep(0.3)
        return answer(prompt)

    with fake_openai(Script(answer=slow)) as (url, script):
        root = make_project(tmp_path, url)
        command = [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes"]
        first = subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        second = subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outputs
        assert script.generations == 5
    assert any("No changes." in o for o in outputs)
    assert any("waiting" in o for o in outputs)
    assert len(unit_runs(root)) == 2


def test_interrupted_apply_leaves_nothing_mistaken_for_done(tmp_path: Path) -> None:
    def slow(prompt: str) -> str:
        time.sleep(3.0)
        return answer(prompt)

    with fake_openai(Script(answer=slow)) as (url, script):
        root = make_project(tmp_path, url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes", "-j", "1"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while script.generations == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
        assert proc.returncode == 130, output
        assert "Traceback" not in output
        done_before = {n for n, _, s in unit_runs(root) if s == "FINISHED"}
        assert len(done_before) < 2  # the apply was stopped before its end
        plan = run_cli("plan", cwd=root)
        assert "quality" in plan.stdout and "No changes" not in plan.stdout
        script.answer = answer
        code, output = apply(root)
        assert code == 0, output
    finished = [n for n, _, s in unit_runs(root) if s == "FINISHED"]
    assert sorted(finished) == ["quality/refusals", "quality/returns-qa"]  # exactly once each


def test_apply_signs_and_publishes_and_verify_accepts_it(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path, url)
        assert run_cli("keys", "generate", cwd=root).code == 0
        code, output = apply(root)
        assert code == 0, output
        published = [line for line in output.splitlines() if line.startswith("published quality: ")]
        assert len(published) == 1, output
        reference = published[0].removeprefix("published quality: ")
        assert reference.startswith("oci-layout:") and "@sha256:" in reference
        verified = run_cli("verify", reference.split("@")[0], cwd=root)
        assert verified.code == 0, verified.stdout + verified.stderr
        assert run_cli("plan", "--detailed-exitcode", cwd=root).code == 0


def test_registry_down_records_then_the_next_apply_publishes_without_running(
    tmp_path: Path,
) -> None:
    from tests.registry import _binary, start_registry

    registry = start_registry(tmp_path / "registry")
    registry.stop()  # down: same address, nothing listening
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        (root / "evalhub.yaml").write_text(
            "specs: [evals]\n"
            f"registry: {{target: 'oci://{registry.host}/evalhub/results', insecure: true}}\n"
        )
        assert run_cli("keys", "generate", cwd=root).code == 0
        code, output = apply(root)
        assert code == 1, output
        assert "not published quality:" in output
        assert sorted(s for _, _, s in unit_runs(root)) == ["FINISHED", "FINISHED"]  # recorded
        plan = run_cli("plan", cwd=root)
        assert "^ quality  publish  (no model calls)" in plan.stdout
        before = script.generations
        config = tmp_path / "registry" / "config.yml"
        log = (tmp_path / "registry" / "again.log").open("wb")
        process = subprocess.Popen(
            [_binary("docker-registry", "docker-registry"), "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    import httpx

                    if httpx.get(f"http://{registry.host}/v2/", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            code, output = apply(root)
            assert code == 0, output
            assert script.generations == before  # published without re-running any unit
            assert f"published quality: oci://{registry.host}/evalhub/results:quality-" in output
            assert run_cli("plan", "--detailed-exitcode", cwd=root).code == 0
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()
    assert len(unit_runs(root)) == 2
