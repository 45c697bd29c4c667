"""The layers of DESIGN.md hold: imports point down only, and the core stays pure."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "evalhub"

# Lower number = lower layer. A module may import its own layer and the layers below.
# `client` is evalhub's client of `evalhub serve`: an adapter users import directly.
LAYERS = {"core": 0, "ports": 1, "adapters": 2, "client": 2, "app": 3, "cli": 4}
COMPOSITION = "evalhub.app.compose"  # the one app module that builds adapters

# What the pure core may import: computation only. No files, network, clock, processes,
# environment or SDKs (mlflow, oras, kubernetes, dagger, httpx, …).
CORE_ALLOWED = {
    "__future__",
    "abc",
    "base64",
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


TEMPLATES = PACKAGE / "templates"  # files evalhub writes out for users, never imported


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(TEMPLATES):
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def imports(path: Path, module: str) -> list[tuple[str, int]]:
    return imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[str, int]]:
    """Every module `source` (the text of `module`) imports, with its line. `from X import y`
    yields X and X.y, since y may be a module (`from evalhub import adapters`); relative
    imports are resolved against the module's package. Imports under TYPE_CHECKING count."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((name, node.lineno))
            out += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    return out


def layer_violations(module: str, found: list[tuple[str, int]]) -> list[str]:
    """What DESIGN.md's layers forbid among `module`'s imports: importing a higher layer; in
    app, adapters anywhere but the composition module; in cli, adapters at all (cli → app)."""
    own = layer_of(module)
    if own is None:
        return []
    out = []
    for name, line in found:
        target = layer_of(name)
        if target is None:
            continue
        if target > own:
            out.append(f"{module}:{line}: layer {own} imports {name} (layer {target})")
        elif (
            name.split(".")[1] == "adapters"
            and module.split(".")[1] in ("app", "cli")
            and module != COMPOSITION
        ):
            out.append(f"{module}:{line}: imports {name}; only {COMPOSITION} may")
    return out


def test_every_module_is_in_a_layer() -> None:
    stray = [m for m, _ in modules() if m.count(".") >= 1 and layer_of(m) is None]
    assert stray == [], f"modules outside the layers of DESIGN.md: {stray}"


def test_imports_point_down_only() -> None:
    """…and app reaches adapters only through app/compose.py; cli never directly."""
    violations = []
    for module, path in modules():
        violations += layer_violations(module, imports(path, module))
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


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("evalhub.core.probe", "from evalhub import cli"),
        ("evalhub.core.probe", "from .. import app"),
        ("evalhub.core.probe", "from ..adapters import git"),
        ("evalhub.core.probe", "import evalhub.adapters.git as git"),
        (
            "evalhub.core.probe",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from evalhub.app.project import Project",
        ),
        ("evalhub.app.probe", "from evalhub import adapters"),
        ("evalhub.app.probe", "from .. import adapters"),
        ("evalhub.app.probe", "from ..adapters.git import head_commit"),
        ("evalhub.app.probe", "import evalhub.adapters.oci.layout"),
        ("evalhub.app.probe", "def f():\n    from evalhub.adapters.mlflow_store import X"),
        ("evalhub.cli.commands.probe", "from evalhub.adapters.signing import generate_key"),
        ("evalhub.cli.commands.probe", "from ... import adapters"),
        ("evalhub.adapters.probe", "from evalhub.app import compose"),
        ("evalhub.ports", "from evalhub import adapters"),
    ],
)
def test_the_checker_catches_each_import_form(module: str, source: str) -> None:
    assert layer_violations(module, imports_of(source, module)) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("evalhub.app.compose", "from evalhub.adapters.git import head_commit"),
        ("evalhub.app.compose", "from evalhub import adapters"),
        ("evalhub.app.apply", "from evalhub.app import compose"),
        ("evalhub.cli.commands.probe", "from evalhub.app.verify import verify_result"),
        ("evalhub.adapters.oci.probe", "from . import layout"),
        ("evalhub.core.probe", "from evalhub import __version__"),
    ],
)
def test_the_checker_allows_what_the_layers_allow(module: str, source: str) -> None:
    assert layer_violations(module, imports_of(source, module)) == []


@pytest.mark.parametrize("sdk", ["mlflow", "oras", "kubernetes", "dagger", "httpx", "subprocess"])
def test_importing_the_core_loads_no_sdk(sdk: str) -> None:
    import subprocess

    code = (
        "import sys, evalhub.core.validate, evalhub.core.resolve;"
        f"sys.exit(1 if {sdk!r} in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
