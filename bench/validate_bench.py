"""How long `evalhub validate` takes on 1,000 generated spec files.

Baselines measured in the same run, on the same files:
  - parse only: ruamel.yaml's safe loader (its C parser, as evalhub uses) reading every file,
    in-process: the floor for any tool that reads these files;
  - startup: `evalhub --version` (interpreter + CLI import).
Prints wall times and the ratios. Run: .venv/bin/python bench/validate_bench.py [N_FILES]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

PROVIDER = """apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: provider-{i}}}
spec:
  adapter: builtin
  benchmarks:
    - id: bench-a
      primary_metric: contains
      dataset: ../data/rows.jsonl
      params: {{scorer: contains}}
    - {{id: bench-b, primary_metric: f1, dataset: ../data/rows.jsonl}}
    - {{id: bench-c, primary_metric: exact_match}}
"""
MODEL = """apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: model-{i}, labels: {{team: t{i}}}}}
spec:
  description: generated model {i}
  endpoint: {{url: "http://127.0.0.1:8000/v1", api: chat, served_name: m{i}, api_key_env: KEY_{i}}}
  revision: v{i}
  defaults: {{temperature: 0, max_tokens: 64}}
"""
COLLECTION = """apiVersion: evalhub.dev/v1
kind: Collection
metadata: {{name: collection-{i}}}
spec:
  version: 1
  benchmarks:
    - {{provider: provider-{p}, benchmark: bench-a, weight: 2, threshold: 0.5}}
    - {{provider: provider-{p}, benchmark: bench-b, weight: 1}}
    - {{provider: provider-{p}, benchmark: bench-c, weight: 1, params: {{limit: 10}}}}
  threshold: 0.6
"""
EVALUATION = """apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: evaluation-{i}}}
spec:
  description: generated evaluation {i}
  model: model-{m}
  collection: collection-{c}@1
  benchmarks:
    - {{provider: provider-{p}, benchmark: bench-c, name: extra, weight: 0.5}}
  params: {{limit: 20, seed: {i}}}
  experiment: {{tags: {{owner: bench}}}}
  gates: {{min_score: 0.5, benchmarks: {{bench-a: 0.4}}, max_regression: 0.05}}
"""


def generate(root: Path, files: int) -> None:
    specs = root / "evals"
    (specs / "data").mkdir(parents=True)
    (specs / "data" / "rows.jsonl").write_text('{"question": "q", "expected": "a"}\n' * 50)
    groups = max(1, files // 10)  # 1 in 10 files is each of model/provider/collection
    kinds = {
        "providers": (PROVIDER, groups),
        "models": (MODEL, groups),
        "collections": (COLLECTION, groups),
        "evaluations": (EVALUATION, files - 3 * groups),
    }
    for directory, (template, count) in kinds.items():
        (specs / directory).mkdir()
        for i in range(count):
            text = template.format(i=i, p=i % groups, m=i % groups, c=i % groups)
            (specs / directory / f"{directory[:-1]}-{i}.yaml").write_text(text)
    (root / "evalhub.yaml").write_text("specs: [evals]\n")


def timed(args: list[str], cwd: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{args} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return times


def parse_only(root: Path) -> float:
    yaml = YAML(typ="safe")
    start = time.perf_counter()
    for path in sorted(root.rglob("*.yaml")):
        list(yaml.load_all(path.read_text()))
    return time.perf_counter() - start


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    repeat = 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, files)
        evalhub = [sys.executable, "-m", "evalhub.cli.main"]
        startup = statistics.median(timed([*evalhub, "--version"], root, repeat))
        validate = statistics.median(timed([*evalhub, "validate"], root, repeat))
        parse = statistics.median(parse_only(root) for _ in range(repeat))
    print(f"files:                      {files}")
    print(f"evalhub validate (median):  {validate:.2f} s  ({validate / files * 1000:.2f} ms/file)")
    print(f"baseline: YAML parse only:  {parse:.2f} s")
    print(f"baseline: evalhub startup:  {startup:.2f} s")
    print(f"ratio validate / parse:     {validate / parse:.2f}x")
    print(f"ratio (validate - startup) / parse: {(validate - startup) / parse:.2f}x")


if __name__ == "__main__":
    main()
