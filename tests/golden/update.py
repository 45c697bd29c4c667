"""Regenerate the golden fingerprints of evals/ after a DELIBERATE change to the examples.

    .venv/bin/python -m tests.golden.update

Never run this to silence a failing golden test caused by a change to evalhub/core/fingerprint.py:
such a change must bump FINGERPRINT_VERSION (and migrate), or it re-runs every user's history.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core.fingerprint import FINGERPRINT_VERSION, evaluation_fingerprint, unit_fingerprint

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name(f"fingerprints-v{FINGERPRINT_VERSION}.json")


def current() -> dict[str, object]:
    project = load_project(REPO)
    evaluations = resolved_evaluations(project, project.spec_source())
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "evaluations": {
            e.name: {
                "fingerprint": evaluation_fingerprint(e),
                "units": {u.key: unit_fingerprint(u) for u in e.units},
            }
            for e in evaluations
        },
    }


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
