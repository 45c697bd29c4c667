"""The example repository a new user copies validates, and resolves to what it says."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core.fingerprint import evaluation_fingerprint, unit_fingerprint
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
    assert adapters == {
        "builtin", "lm-eval", "garak", "guidellm", "lighteval", "mteb", "ragas", "evalhub-sdk"
    }  # fmt: skip
    quality = next(e for e in evaluations if e.name == "support-assistant-quality")
    assert quality.collection == "support-quality@2"
    # Every dataset a unit names was found and hashed.
    assert all(
        d.startswith("sha256:") for e in evaluations for u in e.units for d in u.files.values()
    )
    assert any(u.files for u in quality.units)


def test_bumping_a_provider_pin_replans_its_units_and_nothing_else(tmp_path: Path) -> None:
    """For every framework Provider of the example repository: changing its pinned version
    (and the matching requirement) changes the fingerprints of its units — and of the
    evaluations holding them — and of nothing else."""
    shutil.copytree(REPO / "evals", tmp_path / "evals")
    shutil.copy(REPO / "evalhub.yaml", tmp_path / "evalhub.yaml")

    def fingerprints() -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, str]]]:
        project = load_project(tmp_path)
        evaluations = resolved_evaluations(project, project.spec_source())
        units = {
            (e.name, u.key): (u.provider.name, unit_fingerprint(u))
            for e in evaluations
            for u in e.units
        }
        return {e.name: evaluation_fingerprint(e) for e in evaluations}, units

    before_evaluations, before_units = fingerprints()
    # the SDK adapters pin no framework version: their code is their identity (tests/app/
    # test_sdk_adapter_identity.py)
    sdk = {"sdk-returns-qa", "sdk-fixed"}
    providers = sorted({p for p, _ in before_units.values()} - {"builtin", *sdk})
    assert len(providers) == 6
    for provider in providers:
        path = tmp_path / "evals" / "providers" / f"{provider}.yaml"
        original = path.read_text()
        version = re.search(r"^  version: (\S+)$", original, re.M)
        assert version, provider
        old = version.group(1)
        bumped = original.replace(f"version: {old}", f"version: {old}.post1", 1)
        bumped = bumped.replace(f"=={old}", f"=={old}.post1")
        path.write_text(bumped)
        after_evaluations, after_units = fingerprints()
        path.write_text(original)
        changed = {k for k in before_units if before_units[k] != after_units[k]}
        assert changed == {k for k, (p, _) in before_units.items() if p == provider}, provider
        holding = {e for e, _ in changed}
        assert {e for e in before_evaluations if before_evaluations[e] != after_evaluations[e]} == (
            holding
        ), provider
