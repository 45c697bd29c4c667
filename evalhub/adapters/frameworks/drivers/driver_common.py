# mypy: ignore-errors
"""What the framework drivers share. A plain module next to them, imported by a driver run as a
script (its directory is on sys.path); like the drivers, it imports only the standard library."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path


class DriverError(Exception):
    """An expected failure (bad data, a model that cannot be found or reached): the driver
    writes it as {"error", "hint"} and exits 2."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def package_model_dir(package: str, framework: str) -> Path:
    """The model directory a package ships: its `get_model_path()`, else the directory of a
    sentence-transformers `modules.json` (or a `config.json`) among its installed files."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise DriverError(
            f"the model package {package} is not installed in the {framework} environment",
            f"add it to the {framework} Provider's `requirements`",
        ) from None
    files = list(dist.files or [])
    modules = sorted(
        {f.parts[0] for f in files if len(f.parts) == 2 and f.parts[1] == "__init__.py"}
    )
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except Exception:  # a broken import: fall back to the files
            continue
        getter = getattr(module, "get_model_path", None)
        if callable(getter):
            path = Path(getter())
            if path.is_dir():
                return path
    for marker in ("modules.json", "config.json"):
        found = sorted((f for f in files if f.name == marker), key=lambda f: len(f.parts))
        if found:
            return Path(dist.locate_file(found[0])).parent
    raise DriverError(
        f"the package {package} ships no model: it has no get_model_path() and no "
        "modules.json/config.json among its files",
        "name a package that ships a sentence-transformers model, or use `local: {path: …}`",
    )
