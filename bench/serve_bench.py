"""The same collection submitted twice to the real EvalHub server and to `evalhub serve`: model
calls and wall time, side by side, measured in one run.

Both sides evaluate one scripted OpenAI-compatible model (tests/fake_openai.py, which counts
every request) on the same two benchmarks (3 questions and 2 refusal probes):
  EvalHub  `eval-hub -local` 1.0.2 (from PyPI, in its own cached virtualenv) with a provider
           whose local command is an eval-hub-sdk 1.0.6 adapter (bench/evalhub_adapter.py)
           asking the questions; a collection of both benchmarks; jobs over REST.
  evalhub  `evalhub serve` over a spec repository with the same questions as datasets of the
           built-in adapter; the same collection; jobs over REST (EvalHub's job body).
Each server gets the collection job twice; we report each submission's model calls and its
wall time (submit → terminal state), and the ratio of the two servers' totals. Run:
  .venv/bin/python bench/serve_bench.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalhub.adapters.environments import EnvironmentStore  # noqa: E402
from tests.fake_openai import Script, fake_openai  # noqa: E402
from tests.project import make_project  # noqa: E402
from tests.serving import free_port  # noqa: E402

SERVER_ENV = ["eval-hub-sdk[client,cli,adapter]==1.0.6", "eval-hub-server==1.0.2"]
TERMINAL = {"completed", "failed", "cancelled", "partially_failed"}


def answer(prompt: str) -> str:
    if "card number" in prompt or "address on order" in prompt:
        return "I'm sorry, I can't share that."
    return "You have 60 days; returns are free and there is no restocking fee."


def wait_until(ready: Callable[[], bool], what: str, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} not ready after {deadline:.0f} s")


def healthy(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return check


def run_job(url: str, body: dict[str, Any], script: Script) -> tuple[int, float, str]:
    """(model calls, seconds, final state) of one submission."""
    before, started = script.generations, time.monotonic()
    response = httpx.post(f"{url}/api/v1/evaluations/jobs", json=body, timeout=30)
    response.raise_for_status()
    job_id = response.json()["resource"]["id"]
    state = "pending"

    def done() -> bool:
        nonlocal state
        state = httpx.get(f"{url}/api/v1/evaluations/jobs/{job_id}", timeout=30).json()
        state = state["status"]["state"]
        return state in TERMINAL

    wait_until(done, f"job {job_id}", 600)
    return script.generations - before, time.monotonic() - started, state


def evalhub_server(work: Path, model_url: str, env: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = work / "cfg"
    (config / "providers").mkdir(parents=True)
    (config / "collections").mkdir()
    port = free_port()
    (config / "config.yaml").write_text(
        f"service: {{port: {port}, host: 127.0.0.1}}\n"
        "database: {driver: sqlite, url: 'file:evalhub.db'}\n"
        "otel: {enabled: false}\nprometheus: {enabled: false}\n"
    )
    adapter = REPO / "bench" / "evalhub_adapter.py"
    benchmark = (
        "  - {{id: {id}, name: {id}, category: test, metrics: [score], "
        "primary_score: {{metric: score}}}}\n"
    )
    (config / "providers" / "bench.yaml").write_text(
        "id: bench\nname: Bench\ntitle: Bench adapter\n"
        f"runtime:\n  local:\n    command: {env}/bin/python -I {adapter}\n"
        "benchmarks:\n" + benchmark.format(id="returns-qa") + benchmark.format(id="refusals")
    )
    (config / "collections" / "quality.yaml").write_text(
        "id: quality\nname: quality\ncategory: test\n"
        "benchmarks:\n  - {id: returns-qa, provider_id: bench}\n"
        "  - {id: refusals, provider_id: bench}\n"
    )
    run = work / "run"
    run.mkdir()
    proc = subprocess.Popen(
        [str(env / "bin" / "eval-hub"), "-local", "-configdir", str(config)],
        cwd=run,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def evalhub_serve(work: Path, model_url: str) -> tuple[subprocess.Popen[bytes], str]:
    root = make_project(work / "repo", model_url)
    port = free_port()
    env = {**os.environ, "EVALHUB_TEST_API_KEY": "sk-bench-not-a-real-key-0123"}
    env.pop("EVALHUB_SIGNING_KEY", None)
    command = [sys.executable, "-m", "evalhub.cli.main", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def main() -> int:
    env = EnvironmentStore().ensure(SERVER_ENV)
    assert env is not None
    rows: dict[str, list[tuple[int, float, str]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp,
        fake_openai(Script(answer=answer)) as (url, script),
    ):
        work = Path(tmp)
        os.environ["BENCH_MODEL_URL"] = url
        sides = {
            "EvalHub 1.0.2": (
                lambda: evalhub_server(work / "evalhub", url, env),
                {"name": "bench", "model": {"url": url, "name": "fake-model"},
                 "collection": {"id": "quality"}},
            ),
            "evalhub serve": (
                lambda: evalhub_serve(work / "evalhub-serve", url),
                {"name": "bench", "model": {"url": url, "name": "fake-model"},
                 "collection": {"id": "quality"}},
            ),
        }  # fmt: skip
        for name, (start, body) in sides.items():
            proc, base = start()
            try:
                wait_until(healthy(base), name)
                rows[name] = [run_job(base, body, script) for _ in range(2)]
            finally:
                stop(proc)
    print(f"{'server':<16}{'submission':>12}{'model calls':>13}{'seconds':>10}  state")
    for name, runs in rows.items():
        for i, (calls, seconds, state) in enumerate(runs, 1):
            print(f"{name:<16}{i:>12}{calls:>13}{seconds:>10.2f}  {state}")
    ours, theirs = rows["evalhub serve"], rows["EvalHub 1.0.2"]
    print(
        f"\nsecond submission: {theirs[1][0]} model calls (EvalHub) vs {ours[1][0]} (evalhub); "
        f"wall time ratio EvalHub/evalhub {theirs[1][1] / ours[1][1]:.1f}x"
    )
    total = sum(r[1] for r in theirs) / sum(r[1] for r in ours)
    print(f"both submissions: wall time ratio EvalHub/evalhub {total:.2f}x")
    print(json.dumps({k: [list(r) for r in v] for k, v in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
