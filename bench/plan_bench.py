"""How long `evalhub plan` takes against a year of CI recorded in MLflow, and the naive reader.

For each size (evaluations, 5 units each) a fixture (bench/store_fixture.py) holds the spec
repository and an MLflow SQLite store with 100,000 unit runs whatever the size (heads of the
current units, older runs of the same units, some failed or never finished) plus 3 runs per
evaluation; built once, cached under bench/.cache/.

Measured on the same store, in one run:
  plan   `evalhub plan --format json` as a subprocess, cwd = the fixture repo (its evalhub.yaml
         points tracking_uri at the store): wall time, median of --repeat runs. Start-up,
         loading, validation, resolution, reading MLflow and diffing included.
  parts  the stages in-process, once: resolve (load, validate, resolve), unit fingerprints,
         MlflowStateStore.read, make_plan.
  naive  one MlflowClient.search_runs per unit (tags.`evalhub.fingerprint` = '…', in the
         unit's own experiment, which favours the naive reader), on a random sample of
         --sample units, extrapolated to all units. Client start-up is not counted.

The server axis (--server-runs, default 100,000 and 300,000 unit runs at 1,000 evaluations): a
copy of the same store behind a real `mlflow server` on loopback (HTTP, --workers 4 as MLflow's
default), `evalhub plan` against it (MLFLOW_TRACKING_URI) and against the store embedded, in
--rounds interleaved rounds after a warm-up of each; both plans must be equal. Wall time and
CPU time (evalhub's process, and the server's process group during the plan), min and median.
naive: one search per unit over HTTP, extrapolated from --sample units. Per size it prints
    server plan: X s; embedded plan: Y s; naive: Z s
Run: .venv/bin/python bench/plan_bench.py [--sizes 100,1000,5000] [--repeat 3] [--sample 200]
                                          [--server-runs 100000,300000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mlflow_server
import store_fixture

from evalhub.adapters.mlflow import boundary
from evalhub.adapters.mlflow.search_reader import tag_filter
from evalhub.adapters.mlflow_store import MlflowStateStore
from evalhub.core import records
from evalhub.core.fingerprint import unit_fingerprint
from evalhub.core.plan import make_plan


@dataclass
class Row:
    evaluations: int
    units: int
    unit_runs: int
    runs: int
    plan: float  # median wall time of the subprocess
    plan_runs: list[float]
    how: str  # "subprocess" or "in-process" (when the CLI has no plan command)
    resolve: float
    fingerprints: float
    read: float
    diff: float
    naive_per_unit: float
    naive_total: float
    summary: dict[str, int]


def cli_has_plan() -> bool:
    probe = [sys.executable, "-m", "evalhub.cli.main", "plan", "--help"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def time_plan_subprocess(repo: Path, repeat: int) -> tuple[list[float], dict[str, int]]:
    command = [sys.executable, "-m", "evalhub.cli.main", "plan", "--format", "json"]
    times, summary = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 2):
            raise SystemExit(f"evalhub plan failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        summary = json.loads(proc.stdout).get("summary", {})
    return times, summary


def time_in_process(
    fixture: store_fixture.Fixture,
) -> tuple[float, float, float, float, dict[str, int]]:
    """Seconds to resolve, fingerprint the units, read the store, and diff; the plan summary."""
    start = time.perf_counter()
    evaluations = store_fixture.resolve_repo(fixture.repo)
    resolved = time.perf_counter()
    fingerprints = {unit_fingerprint(u) for e in evaluations for u in e.units}
    fingerprinted = time.perf_counter()
    state = MlflowStateStore.open(fixture.uri, fixture.artifacts).read(fingerprints)
    read = time.perf_counter()
    plan = make_plan(evaluations, state)
    done = time.perf_counter()
    return (
        resolved - start,
        fingerprinted - resolved,
        read - fingerprinted,
        done - read,
        plan.summary.model_dump(),
    )


def time_naive(
    fixture: store_fixture.Fixture, sample: int, seed: int, uri: str | None = None
) -> tuple[float, int]:
    """Seconds per unit of one search_runs per unit (mean over a random sample), and units;
    against `uri` (default: the fixture's SQLite file)."""
    evaluations = store_fixture.resolve_repo(fixture.repo)
    units = [(e, u) for e in evaluations for u in e.units]
    picked = random.Random(seed).sample(units, min(sample, len(units)))
    boundary.import_mlflow()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri or fixture.uri)
    with boundary.quiet():
        experiments = {
            e.name: client.get_experiment_by_name(store_fixture.experiment_of(e)) for e, _ in picked
        }
        client.search_runs([experiments[picked[0][0].name].experiment_id], "", max_results=1)
        start = time.perf_counter()
        found = 0
        for evaluation, unit in picked:
            experiment = experiments[evaluation.name]
            assert experiment is not None
            runs = client.search_runs(
                [experiment.experiment_id],
                tag_filter(records.FINGERPRINT, unit_fingerprint(unit)),
                max_results=1000,
            )
            found += len(runs)
        elapsed = time.perf_counter() - start
    if found == 0:
        raise SystemExit("the naive reader found no runs: the fixture is not what it should be")
    return elapsed / len(picked), len(units)


def measure(size: int, args: argparse.Namespace, subprocess_ok: bool) -> Row:
    params = store_fixture.Params(evaluations=size, unit_runs=args.unit_runs)
    print(f"[{size} evaluations] fixture (cached under {store_fixture.CACHE})", flush=True)
    started = time.perf_counter()
    fixture = store_fixture.build(params, log=print)
    print(f"  ready in {time.perf_counter() - started:.1f} s: {fixture.root}", flush=True)
    resolve, fingerprints, read, diff, summary = time_in_process(fixture)
    if subprocess_ok:
        plan_runs, summary = time_plan_subprocess(fixture.repo, args.repeat)
        how = "subprocess"
    else:
        plan_runs = [sum(time_in_process(fixture)[:4]) for _ in range(args.repeat)]
        how = "in-process"
    print(f"  plan: {', '.join(f'{t:.2f}' for t in plan_runs)} s ({how})", flush=True)
    per_unit, units = time_naive(fixture, args.sample, args.seed)
    print(f"  naive: {per_unit * 1000:.1f} ms per unit over {args.sample} units", flush=True)
    return Row(
        evaluations=size,
        units=units,
        unit_runs=fixture.counts["unit_runs"],
        runs=fixture.counts["unit_runs"] + fixture.counts["evaluation_runs"],
        plan=statistics.median(plan_runs),
        plan_runs=plan_runs,
        how=how,
        resolve=resolve,
        fingerprints=fingerprints,
        read=read,
        diff=diff,
        naive_per_unit=per_unit,
        naive_total=per_unit * units,
        summary=summary,
    )


def report(rows: list[Row], args: argparse.Namespace) -> None:
    head = (
        f"{'evaluations':>11} {'units':>6} {'runs':>7} | {'plan':>6} | {'resolve':>7} "
        f"{'fps':>5} {'read':>5} {'diff':>5} | {'naive/unit':>10} {'naive (all)':>11} | "
        f"{'ratio':>6}"
    )
    print()
    print(f"evalhub plan vs one search_runs per unit; median of {args.repeat}, seconds")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.evaluations:>11} {r.units:>6} {r.runs:>7} | {r.plan:>6.2f} | {r.resolve:>7.2f} "
            f"{r.fingerprints:>5.2f} {r.read:>5.2f} {r.diff:>5.2f} | "
            f"{r.naive_per_unit * 1000:>8.1f}ms {r.naive_total:>11.1f} | "
            f"{r.naive_total / r.plan:>5.0f}x"
        )
    print()
    print("plan: `evalhub plan --format json` wall time (subprocess, includes start-up);")
    print("resolve/fps/read/diff: in-process: load+validate+resolve, unit fingerprints,")
    print("MlflowStateStore.read, make_plan. naive: extrapolated from the sample.")
    base = rows[0]
    for r in rows[1:]:
        print(
            f"growth {base.evaluations} -> {r.evaluations} evaluations "
            f"({r.evaluations / base.evaluations:.0f}x): plan {r.plan / base.plan:.2f}x"
        )
    for r in rows:
        actions = ", ".join(f"{k} {v}" for k, v in r.summary.items() if v)
        print(f"plan of {r.evaluations}: {actions}")
    if any(r.how != "subprocess" for r in rows):
        print("NOTE: `evalhub plan` was not available; plan times are in-process.")


# -- the server axis: the same fixture behind a real `mlflow server` over HTTP --------------------


@dataclass
class Side:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # evalhub's (the plan process)
    server_cpu: list[float] = field(default_factory=list)  # the server's, during the plan

    def line(self) -> str:
        def mm(values: list[float]) -> str:
            return f"{min(values):.2f}/{statistics.median(values):.2f}"

        text = f"wall {mm(self.wall)} s, evalhub CPU {mm(self.cpu)} s"
        return text + (f", server CPU {mm(self.server_cpu)} s" if any(self.server_cpu) else "")


def plan_once(
    repo: Path, env: dict[str, str], side: Side, server_pid: int | None
) -> dict[str, int]:
    command = [sys.executable, "-m", "evalhub.cli.main", "plan", "--format", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    served = mlflow_server.cpu_seconds(server_pid) if server_pid else 0.0
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=False)
    side.wall.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    side.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    side.server_cpu.append(mlflow_server.cpu_seconds(server_pid) - served if server_pid else 0.0)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"evalhub plan failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary: dict[str, int] = json.loads(proc.stdout)["summary"]
    return summary


def measure_server(unit_runs: int, args: argparse.Namespace) -> str:
    params = store_fixture.Params(evaluations=args.server_evaluations, unit_runs=unit_runs)
    print(f"[server axis: {params.evaluations} evaluations, {unit_runs} unit runs]", flush=True)
    fixture = store_fixture.build(params, log=print)
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with tempfile.TemporaryDirectory(prefix="evalhub-plan-bench-") as tmp:
        db = Path(tmp) / "mlflow.db"
        shutil.copy(fixture.db, db)  # the cached store stays as built
        with mlflow_server.serving(Path(tmp), db, workers=args.workers) as server:
            sides = {
                "server": (Side(), {**base, "MLFLOW_TRACKING_URI": server.url}, server.pid),
                "embedded": (Side(), base, None),
            }
            summaries = {}
            for name, (_, env, pid) in sides.items():  # warm-up: caches, the server's workers
                summaries[name] = plan_once(fixture.repo, env, Side(), pid)
            if summaries["server"] != summaries["embedded"]:
                raise SystemExit(f"the plans differ: {summaries}")
            for _ in range(args.rounds):  # interleaved: server, embedded, server, ...
                for side, env, pid in sides.values():
                    plan_once(fixture.repo, env, side, pid)
            per_unit, units = time_naive(fixture, args.sample, args.seed, server.url)
    server_side, embedded_side = sides["server"][0], sides["embedded"][0]
    print(f"  server:   {server_side.line()}", flush=True)
    print(f"  embedded: {embedded_side.line()}", flush=True)
    print(f"  naive: {per_unit * 1000:.1f} ms per unit over HTTP, {units} units", flush=True)
    actions = ", ".join(f"{k} {v}" for k, v in summaries["server"].items() if v)
    return (
        f"{params.evaluations} evaluations, {fixture.counts['unit_runs']:,} unit runs "
        f"({actions}): server plan: {statistics.median(server_side.wall):.2f} s; "
        f"embedded plan: {statistics.median(embedded_side.wall):.2f} s; "
        f"naive: {per_unit * units:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--unit-runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, help="Also write the rows as JSON here.")
    parser.add_argument(
        "--server-runs",
        default="100000,300000",
        help="Unit runs in the store for the server axis, comma-separated ('' skips it).",
    )
    parser.add_argument("--server-evaluations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="Server axis rounds per side.")
    parser.add_argument("--workers", type=int, default=4, help="mlflow server --workers.")
    args = parser.parse_args()
    subprocess_ok = cli_has_plan()
    rows = [measure(int(s), args, subprocess_ok) for s in args.sizes.split(",") if s]
    if rows:
        report(rows, args)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
    lines = [measure_server(int(n), args) for n in args.server_runs.split(",") if n]
    if lines:
        print()
        print(
            f"evalhub plan against a real `mlflow server --workers {args.workers}` on loopback "
            f"(HTTP) and against the same store embedded (SQLite); median of {args.rounds} "
            "interleaved rounds after a warm-up (min/median above); naive: one search per unit "
            "over HTTP, extrapolated from the sample"
        )
        for line in lines:
            print(line)


if __name__ == "__main__":
    main()
