from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Nothing may reach a model or dataset hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests choose their own MLflow store; a developer's shared server must never be written to.
os.environ.pop("MLFLOW_TRACKING_URI", None)


@dataclass(frozen=True)
class Result:
    """What a run of the command line left: exit code and both streams."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> Result:
    """Run the real `evalhub` command in a child process."""
    proc = subprocess.run(
        [sys.executable, "-m", "evalhub.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def live_model() -> Iterator[str]:
    """The real local model (SmolLM2-135M-Instruct on llama-cpp-python), started once for the
    whole session on a free port: yields its base URL (http://127.0.0.1:PORT/v1). The framework
    integration tests share it; `scripts/model_server.py setup` must have run (make test does)."""
    from tests.live import free_port, model_server

    port = free_port()
    model_server("start", port)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        model_server("stop", port)


@pytest.fixture(scope="session")
def live_tokenizer() -> Path:
    """The model's Hugging Face tokenizer directory, rebuilt offline from the GGUF file."""
    from tests.live import tokenizer_dir

    return tokenizer_dir()
