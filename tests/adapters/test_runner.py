"""The one driver runner every framework adapter uses: what environment a driver gets (an
allow-list: never a secret of the caller other than its own Model's key), and that a timeout,
an error while watching or an interrupt stops the driver's whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from evalhub.adapters.frameworks import load_adapter, runner
from evalhub.adapters.frameworks.runner import Driver, driver_environment, run_driver
from evalhub.core.errors import UnitError
from evalhub.core.job import JobSpec
from tests.adapters import (
    test_garak_adapter,
    test_guidellm_adapter,
    test_lighteval_adapter,
    test_lm_eval_adapter,
    test_mteb_adapter,
    test_ragas_adapter,
)
from tests.specs import StatusRecorder, fake_environment, gone, seen

SECRETS = {
    "EVALHUB_SIGNING_KEY": "-----BEGIN EC PRIVATE KEY----- MHcCAQEEI",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-password-4e1c",
    "EVALHUB_REGISTRY_PASSWORD": "registry-password-9b2d",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-0f3a",
}
# adapter -> (its unit's job with the environment at `env` (tmp/env), the variable its Model names)
JOBS: dict[str, tuple[Callable[[Path, Path], JobSpec], str]] = {
    "lm-eval": (lambda tmp, env: test_lm_eval_adapter.make_job(tmp), "LM_KEY"),
    "garak": (lambda tmp, env: test_garak_adapter.make_job(tmp), "GARAK_TEST_KEY"),
    "guidellm": (lambda tmp, env: test_guidellm_adapter.make_job(tmp), "GUIDELLM_KEY"),
    "lighteval": (lambda tmp, env: test_lighteval_adapter.make_job(tmp, environment=env),
                  "LE_KEY"),
    "mteb": (lambda tmp, env: test_mteb_adapter.make_job(
        tmp, model=test_mteb_adapter.ENDPOINT_MODEL, environment=env), "EMB_KEY"),
    "ragas": (lambda tmp, env: test_ragas_adapter.make_job(
        tmp, "faithful", rows=test_ragas_adapter.ROWS[:2], environment=env), "JUDGE_KEY_VAR"),
}  # fmt: skip


@pytest.mark.parametrize("adapter", sorted(JOBS))
def test_the_signing_key_never_reaches_a_framework_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapter: str
) -> None:
    """Issue 12 item 1, at the driver level: a framework's process sees an allow-listed
    environment, with its own Model's key and none of the caller's other secrets."""
    build, variable = JOBS[adapter]
    for name, value in {**SECRETS, variable: "sk-the-models-own-key"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "tokenizer").mkdir()
    monkeypatch.setenv("GUIDELLM_TOKENIZER", str(tmp_path / "tokenizer"))
    job = build(tmp_path, tmp_path / "env")
    env = fake_environment(tmp_path / "env", "sys.exit(1)\n")
    with pytest.raises(UnitError):  # the fake framework fails at once; what did it see?
        load_adapter(adapter).run_benchmark_job(job, StatusRecorder())
    given = seen(env)["env"]
    assert given[variable] == "sk-the-models-own-key"
    assert "sk-the-models-own-key" in given.values()
    leaked = {name for name, value in SECRETS.items() if name in given or value in given.values()}
    assert leaked == set()
    assert given["HF_HUB_OFFLINE"] == "1" and given["PATH"] == os.environ["PATH"]


def test_the_environment_is_an_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LE_KEY", "k")
    monkeypatch.setenv("HOME", "/home/evaluator")
    monkeypatch.setenv("SOME_TOKEN", "t")
    job = test_lighteval_adapter.make_job(tmp_path)
    env = driver_environment(job, {"FRAMEWORK_SETTING": "1", "HOME": str(tmp_path)})
    assert env["LE_KEY"] == "k" and env["FRAMEWORK_SETTING"] == "1"
    assert env["HOME"] == str(tmp_path)  # the framework's own settings win
    assert "SOME_TOKEN" not in env
    assert set(env) <= {*runner.INHERITED, *runner.OFFLINE, "LE_KEY", "FRAMEWORK_SETTING"}


# -- the process group ----------------------------------------------------------------------------

# A driver with a worker in its process group that ignores SIGTERM, as a framework's pool may.
WORKER = """
import os, signal, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
with open(sys.argv[1] + ".tmp", "w") as out:  # whole or absent: the test polls for it
    out.write(str(worker.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("started", flush=True)
if sys.argv[2] == "hang":
    time.sleep(60)
"""


def driver(tmp_path: Path, mode: str, timeout: float = 30, **more: object) -> Driver:
    script = tmp_path / "driver.py"
    script.write_text(WORKER)
    cmd = [sys.executable, str(script), str(tmp_path / "worker.pid"), mode]
    log = tmp_path / "driver.log"
    return Driver("fake", cmd, tmp_path, dict(os.environ), log, timeout, **more)  # type: ignore[arg-type]


def worker(tmp_path: Path) -> int:
    deadline = time.monotonic() + 30  # a loaded machine starts pythons slowly
    while not (tmp_path / "worker.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return int((tmp_path / "worker.pid").read_text())


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "GRACE_SECONDS", 0.3)


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match=r"fake timed out after 1\.5 s") as info:
        run_driver(driver(tmp_path, "hang", timeout=1.5, timeout_hint="be quicker"))
    assert info.value.hint == "be quicker"
    assert gone(worker(tmp_path))


def test_an_interrupt_kills_the_whole_process_group(tmp_path: Path) -> None:
    def interrupt() -> None:
        if (tmp_path / "worker.pid").exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_driver(driver(tmp_path, "hang", watch=interrupt, poll=0.05))
    assert gone(worker(tmp_path))


def test_a_sigterm_to_the_unit_process_stops_the_drivers_group(tmp_path: Path) -> None:
    """The local executor stops a unit with SIGTERM to run-unit's process group, which the
    driver (its own group) is not in: run-unit stops the driver's group, then dies of it."""
    script = tmp_path / "driver.py"
    script.write_text(WORKER)
    unit = tmp_path / "unit.py"
    unit.write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        "from evalhub.adapters.frameworks.runner import Driver, run_driver\n"
        f"tmp = Path({str(tmp_path)!r})\n"
        "cmd = [sys.executable, str(tmp / 'driver.py'), str(tmp / 'worker.pid'), 'hang']\n"
        "run_driver(Driver('fake', cmd, tmp, dict(os.environ), tmp / 'driver.log', 60))\n"
        "print('not reached')\n"
    )
    with subprocess.Popen([sys.executable, str(unit)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            pid = worker(tmp_path)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM and "not reached" not in out
    assert gone(pid)


def test_a_watch_error_stops_the_driver(tmp_path: Path) -> None:
    def refuse() -> None:
        if (tmp_path / "worker.pid").exists():
            raise UnitError("the endpoint went away")

    started = time.monotonic()
    with pytest.raises(UnitError, match="the endpoint went away"):
        run_driver(driver(tmp_path, "hang", watch=refuse, poll=0.05))
    assert time.monotonic() - started < 10
    assert gone(worker(tmp_path))


def test_a_driver_that_exits_leaves_no_worker_behind(tmp_path: Path) -> None:
    finished = run_driver(driver(tmp_path, "exit"))
    assert finished.returncode == 0 and finished.tail() == "started"
    assert gone(worker(tmp_path))


def test_a_failure_names_the_driver_and_its_last_lines(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("import sys\nprint('\\x1b[31mone\\x1b[0m')\nprint('two')\nsys.exit(4)\n")
    log = tmp_path / "fail.log"
    finished = run_driver(Driver("fail", [sys.executable, str(script)], tmp_path, {}, log, 30))
    error = finished.failure()
    assert (error.message, error.hint) == ("fail exited 4: one | two", "see fail.log")


def test_the_driver_reads_no_stdin(tmp_path: Path) -> None:
    script = tmp_path / "read.py"
    script.write_text("import sys\nprint(repr(sys.stdin.read()))\n")
    log = tmp_path / "read.log"
    assert run_driver(Driver("r", [sys.executable, str(script)], tmp_path, {}, log, 30)).tail() == (
        "''"
    )


def test_sigterm_is_tried_first(tmp_path: Path) -> None:
    script = tmp_path / "term.py"
    marker = tmp_path / "terminated"
    script.write_text(
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).touch(), "
        "sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "term.log"
    with pytest.raises(UnitError, match="timed out"):
        run_driver(Driver("t", [sys.executable, str(script)], tmp_path, {}, log, 1.0))
    assert marker.exists()  # it could clean up before it went (within GRACE_SECONDS)
