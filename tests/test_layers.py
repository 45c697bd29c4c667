"""The layers of DESIGN.md hold: imports point down only, and the core stays pure."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "evalhub"

# Lower number = lower layer. A module may import its own layer and the layers below.
LAYERS = {"core": 0, "ports": 1, "adapters": 2, "app": 3, "cli": 4}

# What the pure core may import: computation only. No files, network, clock, processes,
# environment or SDKs (mlflow, oras, kubernetes, dagger, httpx, …).
CORE_ALLOWED = {
    "__future__",
    "abc",
    "collections",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fnmatch",
    "functools",
    "hashlib",
    "itertools",
    "json",
    "math",
    "operator",
    "posixpath",
    "re",
    "string",
    "textwrap",
    "types",
    "typing",
    "unicodedata",
    "pydantic",
    "pydantic_core",
    "jsonschema",
    "evalhub",
}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "evalhub" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def imports(path: Path, module: str) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((name, node.lineno))
    return out


def test_every_module_is_in_a_layer() -> None:
    stray = [m for m, _ in modules() if m.count(".") >= 1 and layer_of(m) is None]
    assert stray == [], f"modules outside the layers of DESIGN.md: {stray}"


def test_imports_point_down_only() -> None:
    violations = []
    for module, path in modules():
        own = layer_of(module)
        if own is None:
            continue
        for name, line in imports(path, module):
            target = layer_of(name)
            if target is not None and target > own:
                violations.append(f"{path.name}:{line}: {module} (layer {own}) imports {name}")
    assert violations == []


def test_core_imports_no_io_or_sdk() -> None:
    violations = []
    for module, path in modules():
        if layer_of(module) != 0:
            continue
        for name, line in imports(path, module):
            if name.split(".")[0] not in CORE_ALLOWED:
                violations.append(f"{path}:{line}: core module {module} imports {name}")
    assert violations == []


def test_the_checker_catches_violations(tmp_path: Path) -> None:
    """The walker itself must see a forbidden import, or the tests above prove nothing."""
    bad = tmp_path / "probe.py"
    bad.write_text("import subprocess\nfrom ..app import validate\nfrom . import x\n")
    found = imports(bad, "evalhub.core.probe")
    assert ("subprocess", 1) in found
    assert ("evalhub.app", 2) in found
    assert layer_of("evalhub.app") == 3 > layer_of("evalhub.core.probe") == 0  # type: ignore[operator]


@pytest.mark.parametrize("sdk", ["mlflow", "oras", "kubernetes", "dagger", "httpx", "subprocess"])
def test_importing_the_core_loads_no_sdk(sdk: str) -> None:
    import subprocess

    code = (
        "import sys, evalhub.core.validate, evalhub.core.resolve;"
        f"sys.exit(1 if {sdk!r} in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
