"""How long `evalhub report` takes over a ledger of 100 evaluations × 50 revisions each.

The repository is generated: 50 commits, each rewriting all 100 ledger files (scores drift,
some regress), so the report reads 5,000 ledger revisions from git, draws 100 charts of 50
trend marks each, and writes the HTML and markdown. Entries are not published (no registry
to verify against), so this measures the ledger, history and rendering path.

Baselines measured in the same run, on the same repository:
  - git floor: `git log -p` of the ledger directory, every revision's text once (what any
    tool reading this history must at least do);
  - startup: `evalhub --version`.
Prints wall times (median of 3) and the ratios. Target: ≤ 3 s.
Run: .venv/bin/python bench/report_bench.py [EVALUATIONS] [REVISIONS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def entry(name: str, revision: int, score: float) -> dict[str, Any]:
    benchmarks = [
        {
            "key": f"bench-{b}",
            "unit_fingerprint": f"{b:02x}" * 32,
            "metric": "contains",
            "value": score,
            "score": score,
            "weight": 1.0,
            "threshold": 0.5,
            "passed": score >= 0.5,
        }
        for b in range(3)
    ]
    return {
        "format_version": 1,
        "evaluation": name,
        "fingerprint": f"{revision:064x}",
        "fingerprint_version": 1,
        "spec_commit": f"{revision:040x}",
        "spec_files": ["evals/evaluations.yaml"],
        "model": "assistant",
        "model_identity": {"revision": f"v{revision // 10}"},
        "collection": "quality@1",
        "benchmarks": benchmarks,
        "aggregate": score,
        "gates": {
            "min_score": 0.5,
            "max_regression": 0.05,
            "collection_threshold": None,
            "benchmarks": {},
        },
        "verdict": "pass" if score >= 0.5 else "fail",
        "reasons": [] if score >= 0.5 else [f"aggregate {score:.3f} is below min_score 0.5"],
        "mlflow": {"tracking_uri": "sqlite:///.evalhub/mlflow.db", "run_id": f"r{revision}"},
        "publication": {"result": None, "attestation_digest": None, "signer_key_id": None},
        "evalhub_version": "0.1.0",
        "time": f"2026-01-{1 + revision % 28:02d}T00:00:00+00:00",
    }


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def make_repo(root: Path, evaluations: int, revisions: int) -> None:
    (root / "results").mkdir(parents=True)
    (root / "evalhub.yaml").write_text("specs: [evals]\n")
    (root / "evals").mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Bench")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "config", "commit.gpgsign", "false")
    for r in range(revisions):
        for e in range(evaluations):
            score = 0.5 + 0.4 * (((r * 7 + e * 3) % 11) / 10)
            data = entry(f"evaluation-{e}", r, round(score, 4))
            path = root / "results" / f"evaluation-{e}.json"
            path.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"evalhub: record {evaluations} results")


def timed(cmd: list[str], cwd: Path) -> float:
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    evaluations = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    revisions = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    evalhub = [sys.executable, "-m", "evalhub.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        start = time.perf_counter()
        make_repo(root, evaluations, revisions)
        print(
            f"generated {evaluations} × {revisions} ledger revisions in "
            f"{time.perf_counter() - start:.1f} s"
        )
        os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
        report = timed([*evalhub, "report", "--out", str(Path(tmp) / "out")], root)
        floor = timed(["git", "log", "-p", "--format=%H", "--", "results"], root)
        startup = timed([*evalhub, "--version"], root)
        html = (Path(tmp) / "out" / "report.html").read_text()
        marks = html.count('class="mark revision')
        assert marks == evaluations * revisions, marks
        print(
            f"evalhub report: {report:.2f} s ({marks} trend marks, {len(html) / 1e6:.1f} MB HTML)"
        )
        print(f"git log -p floor: {floor:.2f} s  -> report/floor {report / floor:.1f}x")
        print(f"evalhub --version: {startup:.2f} s -> report/startup {report / startup:.1f}x")
        print(f"target <= 3 s: {'met' if report <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
