"""schemas/ is generated from the models, checked in, and describes the example specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from evalhub.adapters.files import find_spec_files
from evalhub.adapters.yaml_source import parse_documents
from evalhub.app.schema import drifted_schemas, write_schemas
from evalhub.core.schema import rendered_schemas
from tests.conftest import REPO, run_cli

SCHEMAS = REPO / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    assert drifted_schemas(SCHEMAS) == [], "run `evalhub schema` and commit schemas/"


def test_drift_is_detected(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert drifted_schemas(tmp_path) == []
    target = tmp_path / "model.json"
    data = json.loads(target.read_text())
    data["properties"]["spec"]["description"] = "edited by hand"
    target.write_text(json.dumps(data))
    (tmp_path / "policy.json").unlink()
    assert drifted_schemas(tmp_path) == ["model.json", "policy.json"]
    result = run_cli("schema", "--check", "--dir", str(tmp_path))
    assert result.code == 1
    assert "model.json" in result.stderr and "policy.json" in result.stderr


def test_schema_check_command_passes_on_the_repo() -> None:
    result = run_cli("schema", "--check", cwd=REPO)
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("name", sorted(rendered_schemas()))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # Every property carries documentation for editors.
    undocumented = [
        f"{where}.{prop}"
        for where, node in _objects(schema)
        for prop, sub in node.get("properties", {}).items()
        if prop not in {"apiVersion", "kind", "metadata", "spec"}
        and "description" not in sub
        and "$ref" not in sub
    ]
    assert undocumented == []


def _objects(schema: dict, where: str = "#") -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    found = [(where, schema)] if "properties" in schema else []
    for name, sub in schema.get("$defs", {}).items():
        found += _objects(sub, f"#/$defs/{name}")
    return found


def test_the_example_specs_satisfy_the_checked_in_schemas() -> None:
    """Independent of evalhub's validator: the bare schema files accept every example."""
    validators = {
        kind: Draft202012Validator(json.loads((SCHEMAS / f"{kind}.json").read_text()))
        for kind in ("model", "provider", "collection", "evaluation", "policy")
    }
    files = find_spec_files([REPO / "evals"], ["evals/lm-eval-tasks/**"], REPO)
    assert files, "evals/ holds no specs"
    seen = set()
    for file in files:
        docs, problems = parse_documents(str(file), file.read_bytes())
        assert problems == []
        for doc in docs:
            kind = doc.data["kind"].lower()
            seen.add(kind)
            errors = [e.message for e in validators[kind].iter_errors(doc.data)]
            assert errors == [], f"{file}: {errors}"
    assert seen == set(validators)
    project = Draft202012Validator(json.loads((SCHEMAS / "project.json").read_text()))
    docs, _ = parse_documents("evalhub.yaml", (REPO / "evalhub.yaml").read_bytes())
    assert list(project.iter_errors(docs[0].data)) == []
