"""`evalhub schema`: write the JSON Schemas, or check the checked-in ones have not drifted."""

from __future__ import annotations

from pathlib import Path

from evalhub.core.errors import ConfigError
from evalhub.core.schema import rendered_schemas


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema; returns the files whose content changed."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        changed = []
        for name, text in rendered_schemas().items():
            target = directory / name
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
                changed.append(target)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the schemas to {directory}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else ""),
            "--dir names a directory evalhub can create or write to",
        ) from None
    return changed


def drifted_schemas(directory: Path) -> list[str]:
    """Schema files that are missing or differ from what the models generate."""
    drifted = []
    for name, text in rendered_schemas().items():
        target = directory / name
        try:
            current = target.read_text(encoding="utf-8") if target.is_file() else None
        except (OSError, UnicodeDecodeError):
            current = None  # unreadable counts as drifted: `evalhub schema` rewrites it
        if current != text:
            drifted.append(name)
    return drifted
