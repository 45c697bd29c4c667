"""An EvalHub SDK adapter (`adapter: evalhub-sdk`) in the repository: its module's code is part
of its units' identity, as a bring-your-own adapter's is, and a Provider that does not say
which module to run, or does not pin the SDK, is a spec error naming the file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core.fingerprint import unit_fingerprint
from tests.conftest import REPO
from tests.specs import edit, validate

PROVIDER = (REPO / "evals" / "providers" / "sdk.yaml").read_text().split("---")[1]


def units(root: Path) -> dict[tuple[str, str], tuple[str, str, dict[str, str]]]:
    project = load_project(root)
    return {
        (e.name, u.key): (u.provider.name, unit_fingerprint(u), u.provider.code)
        for e in resolved_evaluations(project, project.spec_source())
        for u in e.units
    }


def test_editing_an_sdk_adapters_module_changes_its_units_and_nothing_else(
    tmp_path: Path,
) -> None:
    shutil.copytree(REPO / "evals", tmp_path / "evals")
    shutil.copy(REPO / "evalhub.yaml", tmp_path / "evalhub.yaml")
    before = units(tmp_path)
    fixed = before[("support-assistant-sdk", "fixed")]
    assert list(fixed[2]) == ["evals/sdk_adapters/fixed_metric.py"]
    module = tmp_path / "evals" / "sdk_adapters" / "fixed_metric.py"
    module.write_text(module.read_text().replace('"value", 0.75', '"value", 0.5'))
    after = units(tmp_path)
    changed = {k for k in before if before[k][1] != after[k][1]}
    assert changed == {("support-assistant-sdk", "fixed")}
    (tmp_path / "evals" / "sdk_adapters" / "notes.md").write_text("not code\n")
    assert units(tmp_path) == after


def test_an_sdk_provider_names_its_module_and_pins_the_sdk() -> None:
    no_module = validate(edit(PROVIDER, spec__config=...))
    (problem,) = no_module.diagnostics
    assert (problem.file, problem.line, problem.path) == ("evals/specs.yaml", 8, "spec")
    assert "config: {module:" in problem.message and "module" in problem.hint
    bad_module = validate(edit(PROVIDER, spec__config={"module": "not a module"}))
    assert [d.path for d in bad_module.diagnostics] == ["spec"]
    unpinned = validate(edit(PROVIDER, spec__requirements=["eval-hub-sdk[adapter]>=1"]))
    (problem,) = unpinned.diagnostics
    assert "pin the SDK" in problem.message and "==" in problem.hint
    assert validate(PROVIDER).ok
