"""uv builds a managed environment from pip's configuration on this machine: the CPU torch
from its find-links directory (/opt/wheels), exactly the lock pip builds, and an environment
built from that lock holds exactly it. Real uv, real pip, real wheels; a temporary store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.adapters.environments import MARKER, EnvironmentStore, lock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WHEELS = Path("/opt/wheels")
TORCH = ["torch==2.13.0"]


def test_uv_gets_the_cpu_torch_from_find_links_and_the_same_lock_as_pip(tmp_path: Path) -> None:
    if not list(WHEELS.glob("torch-2.13.0+cpu-*.whl")):
        pytest.skip("this machine's pip configuration has no CPU torch wheel in /opt/wheels")
    steps: list[str] = []
    by_uv = EnvironmentStore(tmp_path / "uv", installer="uv").ensure(TORCH, step=steps.append)
    by_pip = EnvironmentStore(tmp_path / "pip", installer="pip").ensure(TORCH)
    assert by_uv is not None and by_pip is not None
    assert json.loads((by_uv / MARKER).read_text())["installer"] == "uv"
    assert "installing torch==2.13.0 with uv" in steps
    uv_lock = lock(by_uv)
    # the CPU build (only /opt/wheels has it: the index's 2.13.0 is the CUDA one) and none
    # of the CUDA build's nvidia-* dependencies
    assert "torch==2.13.0+cpu" in uv_lock
    assert not [p for p in uv_lock if p.startswith("nvidia-")]
    assert uv_lock == lock(by_pip)

    # built from the lock (uv pip sync): exactly the lock, in its own directory
    steps.clear()
    store = EnvironmentStore(tmp_path / "locked", installer="uv")
    from_lock = store.ensure(TORCH, step=steps.append, lock=uv_lock)
    assert from_lock is not None and lock(from_lock) == uv_lock
    assert steps[-1] == f"installing the {len(uv_lock)} packages of its lock with uv"
