"""Building spec documents in memory for tests of the pure core."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from evalhub.adapters.yaml_source import parse_documents
from evalhub.core.job import JobSpec, JobStatusUpdate
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.source import SourceDocument
from evalhub.core.validate import Validation, validate_documents

MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "http://127.0.0.1:8000/v1", api: chat, served_name: smollm2-135m}
  revision: v1
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: builtin}
spec:
  adapter: builtin
  benchmarks:
    - id: faq
      primary_metric: contains
      dataset: data/faq.jsonl
      params: {scorer: contains, limit: 5}
    - {id: tone, primary_metric: f1}
"""
COLLECTION = """
apiVersion: evalhub.dev/v1
kind: Collection
metadata: {name: quality}
spec:
  version: 1
  benchmarks:
    - {provider: builtin, benchmark: faq, weight: 2, threshold: 0.5, params: {scorer: exact_match}}
    - {provider: builtin, benchmark: tone}
  threshold: 0.6
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: assistant-quality, labels: {team: support}}
spec:
  model: assistant
  collection: quality@1
  params: {limit: 3, seed: 7}
  gates: {min_score: 0.7, benchmarks: {faq: 0.8}}
"""
BASE = [MODEL, PROVIDER, COLLECTION, EVALUATION]
# Embedding Models for the adapters that embed text (mteb, ragas).
PACKAGE_EMBEDDER = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  type: embedding
  local: {package: GT_all.MiniLM-L6-v2}
  revision: all-minilm-l6-v2
"""
PATH_EMBEDDER = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  type: embedding
  local: {path: models/minilm}
  revision: v1
"""


def docs(*texts: str, file: str = "evals/specs.yaml") -> list[SourceDocument]:
    out: list[SourceDocument] = []
    for i, text in enumerate(texts):
        parsed, problems = parse_documents(f"{file}#{i}" if len(texts) > 1 else file, text.encode())
        assert problems == [], problems
        out.extend(parsed)
    return out


def validate(*texts: str) -> Validation:
    return validate_documents(docs(*texts), frozenset({"ci"}))


def edit(text: str, **changes: Any) -> str:
    """Return `text` (one YAML document) with dotted-path fields replaced."""
    import io

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    data = yaml.load(text)
    for dotted, value in changes.items():
        node = data
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        if value is ...:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def unit_job(
    evaluation: ResolvedEvaluation,
    spec_root: Path,
    project_root: Path,
    *,
    environment: str | None = None,
    timeout: float = 3600,
    concurrency: int = 4,
    key: str | None = None,
) -> JobSpec:
    """The job of the evaluation's unit `key` (default: its only unit), as apply hands it to
    `run-unit` (output in `<project_root>/out`)."""
    if key is None:
        (unit,) = evaluation.units
    else:
        unit = next(u for u in evaluation.units if u.key == key)
    return JobSpec(
        evaluation=evaluation.name,
        unit=f"{evaluation.name}/{unit.key}",
        fingerprint="f" * 64,
        spec=unit,
        spec_root=str(spec_root),
        project_root=str(project_root),
        output_dir=str(project_root / "out"),
        environment=environment,
        timeout_seconds=timeout,
        concurrency=concurrency,
    )


def framework_job(
    tmp_path: Path,
    *documents: str,
    spec_root: Path | None = None,
    files: dict[str, str] | None = None,
    digests: dict[str, str] | None = None,
    environment: Path | None = None,
    timeout: float = 60,
    concurrency: int = 4,
    key: str | None = None,
) -> JobSpec:
    """The job of one unit (`key`, default the only one) of the evaluation `documents` define,
    for a framework adapter: `files` written under the spec root (default `tmp_path`) first,
    output in `tmp_path/out`, run with the fake environment at `environment`, if any."""
    root = spec_root or tmp_path
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    result = validate(*documents)
    assert result.ok, result.diagnostics
    (evaluation,) = resolve(result.specs, digests or {})
    return unit_job(
        evaluation,
        root,
        tmp_path,
        environment=str(environment) if environment else None,
        timeout=timeout,
        concurrency=concurrency,
        key=key,
    )


# What every fake environment python does first: record what it was given (argv, working
# directory, its whole environment) in <env>/seen.json, and read its MODE from <env>/mode.
FAKE_PROLOGUE = """#!{python}
import json, os, sys
from pathlib import Path
ENV = Path(__file__).resolve().parent.parent
MODE = (ENV / "mode").read_text() if (ENV / "mode").exists() else "ok"
(ENV / "seen.json").write_text(json.dumps(
    {{"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}}
))
"""


def fake_environment(env: Path, body: str, mode: str = "ok") -> Path:
    """A managed environment at `env` whose `bin/python` stands in for the framework: it runs
    `body` (Python; MODE and ENV defined) after the prologue above, whatever it is asked."""
    python = env / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(FAKE_PROLOGUE.format(python=sys.executable) + body)
    python.chmod(0o755)
    set_mode(env, mode)
    return env


def set_mode(env: Path, mode: str) -> None:
    (env / "mode").write_text(mode)


def seen(env: Path) -> dict[str, Any]:
    """What the fake environment's python was last given: argv, cwd and env."""
    recorded: dict[str, Any] = json.loads((env / "seen.json").read_text())
    return recorded


class StatusRecorder:
    """JobCallbacks that keep every status update an adapter reports."""

    def __init__(self) -> None:
        self.updates: list[JobStatusUpdate] = []

    def report_status(self, update: JobStatusUpdate) -> None:
        self.updates.append(update)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie is dead too, waiting for init to reap it
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)
