"""The example repository a new user copies validates, and resolves to what it says."""

from __future__ import annotations

import json

from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from tests.conftest import REPO, run_cli


def test_validate_evals_passes() -> None:
    result = run_cli("validate", "evals/", "--format", "json", cwd=REPO)
    assert result.code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["errors"] == []
    assert report["documents"] >= 15


def test_examples_cover_every_kind_and_adapter() -> None:
    project = load_project(REPO)
    evaluations = resolved_evaluations(project, project.spec_source())
    adapters = {u.provider.adapter for e in evaluations for u in e.units}
    assert adapters == {"builtin", "lm-eval", "garak", "guidellm", "lighteval", "mteb", "ragas"}
    quality = next(e for e in evaluations if e.name == "support-assistant-quality")
    assert quality.collection == "support-quality@2"
    # Every dataset a unit names was found and hashed.
    assert all(
        d.startswith("sha256:") for e in evaluations for u in e.units for d in u.files.values()
    )
    assert any(u.files for u in quality.units)
