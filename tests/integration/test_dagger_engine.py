"""The Dagger executor and module against a REAL Dagger engine: `make dagger-e2e` on a machine
with the Dagger CLI and a container runtime (it runs these under `dagger run`, which provides the
session). Never run on the machines evalhub is built on (no engine can run there): skipped unless
EVALHUB_DAGGER_E2E=1 and a session is present. The same behaviours are tested on every run
against the session fake (tests/app/test_dagger_executor.py, tests/app/test_dagger_module.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, recorded_units, unit_runs

SECRET = "sk-evalhub-dagger-e2e-" + "r" * 24
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("EVALHUB_DAGGER_E2E") != "1" or not os.environ.get("DAGGER_SESSION_PORT"),
        reason="needs a real Dagger engine: run `make dagger-e2e` (dagger/README.md)",
    ),
]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)


def dagger_project(root: Path, url: str) -> Path:
    make_project(root, url)
    (root / "evalhub.yaml").write_text("specs: [evals]\nexecutors: {default: dagger}\n")
    return root


def test_a_real_engine_records_what_a_local_apply_records(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        local = make_project(tmp_path / "local", url)
        assert run_cli("apply", "--yes", cwd=local, timeout=1800).code == 0
        root = dagger_project(tmp_path / "dagger", url)  # a loopback endpoint: the host tunnel
        result = run_cli("apply", "--yes", cwd=root, timeout=1800)
        assert result.code == 0, result.output
        assert unit_runs(root) == unit_runs(local)
        for name, unit in recorded_units(root).items():
            timeless = {k: v for k, v in unit.metrics.items() if not k.startswith(("dur", "lat"))}
            local_unit = recorded_units(local)[name].metrics
            assert timeless == {k: v for k, v in local_unit.items() if k in timeless}
        again = run_cli("apply", "--yes", cwd=root, timeout=600)
        assert again.code == 0 and "No changes." in again.output
        assert script.generations == 10
    for environment in (root / ".evalhub" / "artifacts").rglob("environment.json"):
        runner = json.loads(environment.read_text())["runner"]
        assert runner["digest"].startswith("sha256:") and "@sha256:" in runner["base"]


def test_a_failed_attempt_is_not_served_from_the_cache(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer, always=500)) as (url, script):
        root = dagger_project(tmp_path, url)
        assert run_cli("apply", "--yes", cwd=root, timeout=1800).code == 1
        failed_requests = script.generations
        script.always = None
        assert run_cli("apply", "--yes", cwd=root, timeout=1800).code == 0
        assert script.generations > failed_requests  # the retry really called the model
    assert [s for _, _, s in unit_runs(root) if s == "FINISHED"] == ["FINISHED", "FINISHED"]


def test_the_module_validates_a_repository(tmp_path: Path) -> None:
    dagger = shutil.which("dagger")
    assert dagger, "the Dagger CLI is not on PATH"
    project = make_project(tmp_path, "http://127.0.0.1:9/v1")
    call = [dagger, "call", "-m", str(REPO / "dagger"), "validate", f"--source={project}"]
    done = subprocess.run(call, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0 and "4 documents valid" in done.stdout, done.stderr
