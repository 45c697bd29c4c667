"""Golden fingerprints for FINGERPRINT_VERSION 1.

If one of these fails:
- you changed evalhub/core/fingerprint.py (or what resolution feeds it): that re-runs every
  recorded unit of every user. Bump FINGERPRINT_VERSION, add a new golden file, and say so in
  the changelog — never just update the values;
- you changed the example specs under evals/ on purpose: run `python -m tests.golden.update`.
"""

from __future__ import annotations

import json

from evalhub.core.fingerprint import FINGERPRINT_VERSION
from tests.core.test_fingerprint import BASELINE
from tests.golden.update import GOLDEN, current


def test_fingerprint_version_is_pinned() -> None:
    assert FINGERPRINT_VERSION == 1
    assert GOLDEN.name == "fingerprints-v1.json"


def test_in_memory_spec_fingerprints_are_pinned() -> None:
    assert BASELINE == (
        "819b8516413360b8d325d766e4fd1cd4d51428f9483568f7be85d3616f143009",
        [
            "f2645debdd4e10df7bd1fa1e63b7b7fdd9b6fb688df2ecddb04b5c9623f78dc4",
            "a9bd40ee8ae57d3ddd1c65894c0a57dbedc7e7eb5bf9f5d288e5e8a8d15fb2df",
        ],
    )


def test_example_spec_fingerprints_are_pinned() -> None:
    assert current() == json.loads(GOLDEN.read_text())
