"""What evalhub costs before it does anything: `evalhub --help`, and an apply with nothing to do.

Measured as subprocesses of this interpreter, in one run, each command once untimed (a warm-up:
byte-code, the page cache), then ROUNDS rounds in which every command runs once, interleaved,
so the drift of a shared machine hits all of them alike. Wall and CPU time (user + system of
the child), min and median; ratios are of the medians.

  python -c pass              the interpreter alone
  python -c "import click"    the interpreter and the CLI framework: what `--help` cannot avoid
  evalhub --help              every command with its one-line help
  evalhub validate            the 100-evaluation project: load, validate, resolve (no store)
  evalhub apply --yes         the same project, its store (SQLite) holding every unit's run:
                              nothing to do; the baseline is validate above, which does the same
                              loading, so the difference is what reading the store, planning
                              and apply's own start-up add

The project is bench/store_fixture.py's (--evaluations, 5 units each; --unit-runs in the
store, heads included), with nothing changed or failed since the last apply, and no signing
key (an apply with a key also asks the OCI target which results it holds: one index read for
the embedded layout). It is copied to a temporary directory for each run of this script.

--compare DIR measures the evalhub source tree DIR too (a checkout of main, say: `git worktree
add /tmp/main main`), with this interpreter and its packages, interleaved with this tree in
the same rounds, and prints the ratio of this tree to DIR.

Run: .venv/bin/python bench/start_bench.py [--rounds 7] [--compare DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import store_fixture  # noqa: E402

TARGETS = {"evalhub --help": 0.15, "evalhub apply --yes": 1.0}  # seconds, median (issue 18)


@dataclass
class Command:
    label: str
    argv: list[str]
    cwd: Path
    tree: str  # "" for this checkout, else the compared tree's label
    env: dict[str, str]
    ok: tuple[int, ...] = (0,)
    expect: str = ""  # text the output must hold (the run did what it says)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run(self, timed: bool) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            self.argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        output = proc.stdout + proc.stderr
        if proc.returncode not in self.ok or self.expect not in output:
            raise SystemExit(
                f"{self.label} ({self.tree or 'this tree'}) failed ({proc.returncode}):\n"
                f"{output[-3000:]}"
            )
        if timed:
            self.wall.append(elapsed)
            self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def project(evaluations: int, unit_runs: int, work: Path) -> Path:
    params = store_fixture.Params(
        evaluations=evaluations, unit_runs=unit_runs, changed=0.0, failed=0.0, interrupted=0.0
    )
    fixture = store_fixture.build(params, log=print)
    repo = work / "repo"
    shutil.copytree(fixture.repo, repo, ignore=shutil.ignore_patterns(".evalhub"))
    return repo


def commands(repo: Path, trees: dict[str, Path | None]) -> list[Command]:
    python = sys.executable
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    out = [
        Command("python -c pass", [python, "-c", "pass"], repo, "", base),
        Command('python -c "import click"', [python, "-c", "import click"], repo, "", base),
    ]
    evalhub = [python, "-m", "evalhub.cli.main"]
    for tree, source in trees.items():
        env = dict(base, PYTHONPATH=str(source)) if source else base
        out += [
            Command("evalhub --help", [*evalhub, "--help"], repo, tree, env, expect="apply"),
            Command("evalhub validate", [*evalhub, "validate"], repo, tree, env, expect="valid"),
            Command(
                "evalhub apply --yes",
                [*evalhub, "apply", "--yes"],
                repo,
                tree,
                env,
                expect="No changes.",
            ),
        ]
    return out


def report(rows: list[Command], args: argparse.Namespace, compared: str | None) -> None:
    def median(label: str, tree: str = "") -> float:
        return next(statistics.median(c.wall) for c in rows if (c.label, c.tree) == (label, tree))

    print()
    print(
        f"evalhub start-up, {args.evaluations} evaluations ({args.unit_runs:,} unit runs in the "
        f"store): {args.rounds} interleaved rounds after a warm-up; seconds"
    )
    head = f"{'command':<28} {'tree':<12} {'wall min':>8} {'median':>7} {'cpu med':>7}  vs"
    print(head)
    print("-" * (len(head) + 40))
    baselines = {
        "evalhub --help": 'python -c "import click"',
        "evalhub validate": "python -c pass",
        "evalhub apply --yes": "evalhub validate",
    }
    for c in rows:
        wall = statistics.median(c.wall)
        line = (
            f"{c.label:<28} {c.tree or 'this':<12} {min(c.wall):>8.3f} {wall:>7.3f} "
            f"{statistics.median(c.cpu):>7.3f}"
        )
        notes = []
        if c.label in baselines:
            base = baselines[c.label]
            base_tree = c.tree if base.startswith("evalhub") else ""
            notes.append(f"{wall / median(base, base_tree):.2f}x {base}")
        if c.tree and compared:
            notes.append(f"this tree: {median(c.label) / wall:.2f}x")
        if not c.tree and c.label in TARGETS:
            target = TARGETS[c.label]
            notes.append(f"target {target} s: {'met' if wall <= target else 'NOT met'}")
        print(line + ("  " + "; ".join(notes) if notes else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--unit-runs", type=int, default=100_000)
    parser.add_argument("--compare", type=Path, help="another evalhub source tree to measure")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds: at least 5")
    trees: dict[str, Path | None] = {"": None}
    compared = None
    if args.compare:
        if not (args.compare / "evalhub" / "__init__.py").is_file():
            parser.error(f"--compare: {args.compare} holds no evalhub package")
        compared = args.compare.name or str(args.compare)
        trees[compared[:12]] = args.compare.resolve()
    with tempfile.TemporaryDirectory(prefix="evalhub-start-") as tmp:
        repo = project(args.evaluations, args.unit_runs, Path(tmp))
        rows = commands(repo, trees)
        for command in rows:
            command.run(timed=False)
        for i in range(args.rounds):
            for command in rows:
                command.run(timed=True)
            print(f"  round {i + 1}/{args.rounds} done", flush=True)
    report(rows, args, compared)


if __name__ == "__main__":
    main()
