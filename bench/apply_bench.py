"""What evalhub costs on top of the frameworks it drives, against the real local model.

(a) an lm-eval task through `evalhub apply` vs bare `python -m lm_eval` with the same arguments,
    on the same server, in a project whose MLflow store exists: wall time ratio (target <= 1.05)
    and evalhub's fixed cost per unit (the difference of the medians);
(b) the built-in evaluator's requests/s vs a raw async HTTP loop sending the same requests with
    the same concurrency (target >= 0.95).

Each side runs once untimed (a warm-up: caches, the server's prompt cache), then ROUNDS rounds
interleave the two sides (A B A B …), so drift of a shared machine hits both alike; min and
median of each side are reported, and the ratios are of the medians. Every evalhub round applies
in a fresh copy of the same project (its store exists, the unit is not recorded yet), so each
round really runs the unit.

With `--before REF` (a git revision of this repository, e.g. `main`), evalhub as it was at REF
(its `evalhub/` package, extracted to a temporary directory and put first on PYTHONPATH, which
the unit's process inherits too) is a third side of the lm-eval comparison, interleaved with the
other two: before and after measured in the same run, on the same server and machine load.

Needs `scripts/model_server.py setup`.
Run: .venv/bin/python bench/apply_bench.py [ROWS] [ROUNDS] [--before REF]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evalhub.adapters.environments import EnvironmentStore  # noqa: E402
from evalhub.adapters.frameworks.builtin import BuiltinAdapter, load_rows, render_prompt  # noqa: E402
from evalhub.adapters.frameworks.lm_eval import command, prepare_tasks  # noqa: E402
from evalhub.app.project import load_project  # noqa: E402
from evalhub.app.specs import resolved_evaluations  # noqa: E402
from evalhub.core.job import JobSpec, JobStatusUpdate  # noqa: E402
from tests.live import free_port, model_server  # noqa: E402

LM_EVAL = ["lm-eval[api]==0.4.13", "transformers"]
SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: completions}}
spec:
  endpoint: {{url: "{url}", api: completions, served_name: smollm2-135m}}
  revision: bench
  defaults: {{temperature: 0, max_tokens: 24, timeout_seconds: 120}}
---
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: chat}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: smollm2-135m}}
  revision: bench
  defaults: {{temperature: 0, max_tokens: 24, timeout_seconds: 120}}
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: lm-eval}}
spec:
  adapter: lm-eval
  version: 0.4.13
  requirements: {requirements}
  benchmarks:
    - id: returns_policy_gen
      primary_metric: exact_match
      files: [lm-eval-tasks/returns_policy_gen]
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: builtin}}
spec:
  adapter: builtin
  benchmarks:
    - {{id: qa, primary_metric: contains, dataset: datasets/returns_policy_qa.jsonl}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: harness}}
spec:
  model: completions
  benchmarks: [{{provider: lm-eval, benchmark: returns_policy_gen}}]
  params: {{limit: {rows}, num_fewshot: 0, seed: 1}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: builtin}}
spec:
  model: chat
  benchmarks: [{{provider: builtin, benchmark: qa}}]
  params: {{limit: {rows}}}
  execution: {{concurrency: 2}}
"""


class Quiet:
    def report_status(self, update: JobStatusUpdate) -> None:
        pass


def make_repo(root: Path, url: str, rows: int) -> None:
    specs = root / "evals"
    shutil.copytree(REPO / "evals" / "datasets", specs / "datasets")
    shutil.copytree(REPO / "evals" / "lm-eval-tasks", specs / "lm-eval-tasks")
    (specs / "specs.yaml").write_text(
        SPECS.format(url=url, rows=rows, requirements=json.dumps(LM_EVAL))
    )
    (root / "evalhub.yaml").write_text('specs: [evals]\nexclude: ["evals/lm-eval-tasks/**"]\n')


def job_for(root: Path, evaluation: str, env: Path | None) -> JobSpec:
    project = load_project(root)
    (ev,) = [
        e for e in resolved_evaluations(project, project.spec_source()) if e.name == evaluation
    ]
    unit = ev.units[0]
    out = root / "bench-out" / evaluation
    return JobSpec(
        evaluation=evaluation,
        unit=f"{evaluation}/{unit.key}",
        fingerprint="0" * 64,
        spec=unit,
        spec_root=str(root / "evals"),
        project_root=str(root),
        output_dir=str(out),
        environment=str(env) if env else None,
        concurrency=2,
    )


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


@dataclass
class Side:
    """One side of a comparison: its timed rounds (seconds)."""

    name: str
    seconds: list[float] = field(default_factory=list)
    # evalhub sides: each round's wall time minus the unit's own duration in that round (what
    # the adapter measured around lm_eval), so the model server's drift cancels out
    around: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def line(self, unit: str = "s", per: float | None = None) -> str:
        if per is None:
            fastest, typical = min(self.seconds), self.median
            return f"  {self.name:<26}min {fastest:7.2f} {unit}   median {typical:7.2f} {unit}"
        fastest, typical = per / min(self.seconds), per / self.median
        return f"  {self.name:<26}best {fastest:7.2f} {unit}   median {typical:7.2f} {unit}"


def interleaved(
    a: Callable[[], float], b: Callable[[], float], rounds: int
) -> tuple[list[float], list[float]]:
    """A warm-up of each side, then `rounds` rounds of A then B."""
    first, second = rotated([a, b], rounds)
    return first, second


def rotated(sides: list[Callable[[], float]], rounds: int) -> list[list[float]]:
    """A warm-up of each side, then `rounds` rounds of every side in turn (A B C A B C …)."""
    for side in sides:
        side()
    seconds: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        for side, kept in zip(sides, seconds, strict=True):
            kept.append(side())
    return seconds


def extract(revision: str, target: Path) -> Path:
    """The `evalhub/` package of this repository at `revision`, under `target`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "evalhub"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def bench_lm_eval(root: Path, rounds: int, before: Path | None = None) -> list[Side]:
    """Bare lm_eval, evalhub apply, and (with `before`: evalhub's package at a revision)
    evalhub apply as it was, in rotation."""
    env_dir = EnvironmentStore().ensure(LM_EVAL)
    job = job_for(root, "harness", env_dir)
    bare_dir = root / "bare"
    include, types = prepare_tasks(job, bare_dir / "tasks")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("PYTHONPATH", None)
    # The template's store exists (the builtin evaluation recorded once), the harness is new.
    timed([sys.executable, "-m", "evalhub.cli.main", "apply", "--yes", "-e", "builtin"], root, env)
    count = iter(range(10_000))

    def bare() -> float:
        out = bare_dir / f"lm_eval-{next(count)}"
        return timed(command(job, include, types, out), bare_dir, env)

    def applying(environment: dict[str, str], around: list[float]) -> Callable[[], float]:
        def evalhub() -> float:
            copy = root.parent / f"round-{next(count)}"
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns("bare", "round-*"))
            apply = [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes", "-e", "harness"]
            try:
                elapsed = timed(apply, copy, environment)
                around.append(elapsed - unit_duration(copy))
                return elapsed
            finally:
                shutil.rmtree(copy, ignore_errors=True)

        return evalhub

    result = [Side("bare python -m lm_eval"), Side("evalhub apply")]
    sides = [bare, applying(env, result[1].around)]
    if before is not None:
        # PYTHONPATH comes before the editable install's finder, in apply and in run-unit
        result.append(Side("evalhub apply (before)"))
        sides.append(applying({**env, "PYTHONPATH": str(before)}, result[2].around))
    for side, seconds in zip(result, rotated(sides, rounds), strict=True):
        side.seconds = seconds
        del side.around[: len(side.around) - rounds]  # the warm-up's
    return result


def unit_duration(project: Path) -> float:
    """The lm-eval unit's duration as its adapter measured it (result.json of its run)."""
    for path in (project / ".evalhub" / "runs").glob("*/result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("framework") == "lm-eval":
            if result.get("status") != "succeeded":
                raise SystemExit(f"the lm-eval unit failed: {result.get('error')}")
            return float(result["duration_seconds"])
    raise SystemExit(f"no lm-eval result under {project}/.evalhub/runs")


async def raw_loop(job: JobSpec) -> tuple[int, float]:
    """The same requests as the built-in evaluator, with nothing else around them."""
    unit = job.spec
    assert unit.model.endpoint is not None and unit.dataset is not None
    rows = load_rows(Path(job.spec_root) / unit.dataset, int(unit.params["limit"]))  # type: ignore[arg-type]
    url = unit.model.endpoint.url + "/chat/completions"
    limiter = asyncio.Semaphore(job.concurrency)
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(row: dict[str, object]) -> None:
            body = {
                "model": unit.model.endpoint.served_name,  # type: ignore[union-attr]
                "messages": [{"role": "user", "content": render_prompt(row, None)}],
                "temperature": 0,
                "max_tokens": unit.model.defaults.max_tokens,
            }
            async with limiter:
                (await client.post(url, json=body)).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one(r) for r in rows))
        return len(rows), time.perf_counter() - start


def bench_builtin(root: Path, rounds: int) -> tuple[int, Side, Side]:
    job = job_for(root, "builtin", None)

    def raw() -> float:
        return asyncio.run(raw_loop(job))[1]

    def builtin() -> float:
        start = time.perf_counter()
        result = BuiltinAdapter().run_benchmark_job(job, Quiet())
        elapsed = time.perf_counter() - start
        assert result.samples == rows
        return elapsed

    rows = asyncio.run(raw_loop(job))[0]
    raw_rounds, builtin_rounds = interleaved(raw, builtin, rounds)
    return (
        rows,
        Side("raw async HTTP loop", raw_rounds),
        Side("evalhub builtin adapter", builtin_rounds),
    )


def overhead(name: str, side: Side, bare: Side) -> str:
    ratio = side.median / bare.median
    fixed = side.median - bare.median
    around = statistics.median(side.around)
    return (
        f"  {name}:\n"
        f"    ratio {ratio:6.3f} (medians; target <= 1.05)\n"
        f"    fixed cost {fixed:6.2f} s per unit (median - bare median; target < 1)\n"
        f"    around the unit {around:6.2f} s (median of each round's apply - its unit's "
        f"duration; min {min(side.around):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=10)
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--before", metavar="REF", help="also time evalhub as it was at REF")
    args = parser.parse_args()
    rows, rounds = args.rows, args.rounds
    port = free_port()
    model_server("start", port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "project"
            root.mkdir()
            make_repo(root, f"http://127.0.0.1:{port}/v1", rows)
            before = extract(args.before, Path(tmp) / "before") if args.before else None
            lm_eval = bench_lm_eval(root, rounds, before)
            requests, raw, builtin = bench_builtin(root, rounds)
    finally:
        model_server("stop", port)
    bare, evalhub, *was = lm_eval
    print(f"lm-eval returns_policy_gen, {rows} rows, same server, {rounds} rounds in rotation:")
    for side in lm_eval:
        print(side.line())
        print(f"{'':28}rounds: {' '.join(f'{t:.2f}' for t in side.seconds)}")
    print(overhead("evalhub apply", evalhub, bare))
    if was:
        print(overhead(f"evalhub apply at {args.before}", was[0], bare))
    print(f"built-in evaluator, {rows} rows, concurrency 2, {rounds} interleaved rounds:")
    print(raw.line("requests/s", requests))
    print(builtin.line("requests/s", requests))
    ratio = raw.median / builtin.median
    print(f"  ratio builtin / raw:      {ratio:7.3f}  (medians; target >= 0.95)")


if __name__ == "__main__":
    main()
