"""`evalhub schema`: write the JSON Schemas, or check the checked-in ones have not drifted."""

from __future__ import annotations

from pathlib import Path

from evalhub.core.schema import rendered_schemas


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema; returns the files whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in rendered_schemas().items():
        target = directory / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    return changed


def drifted_schemas(directory: Path) -> list[str]:
    """Schema files that are missing or differ from what the models generate."""
    drifted = []
    for name, text in rendered_schemas().items():
        target = directory / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            drifted.append(name)
    return drifted
