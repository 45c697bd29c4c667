"""Rendering validation results: text for people, versioned JSON for tools."""

from __future__ import annotations

import json
from collections.abc import Sequence

from evalhub.core.errors import Diagnostic

FORMAT_VERSION = 1


def validation_text(
    diagnostics: list[Diagnostic], documents: int, notes: Sequence[Diagnostic] = ()
) -> str:
    said = "".join(f"note: {n.render()}\n" for n in notes)
    if not diagnostics:
        return f"{said}✓ {documents} document{'s' if documents != 1 else ''} valid"
    body = said + "\n".join(d.render() for d in diagnostics)
    count = len(diagnostics)
    return (
        f"{body}\n\n✗ {count} problem{'s' if count != 1 else ''} "
        f"in {documents} document{'s' if documents != 1 else ''}"
    )


def validation_json(
    diagnostics: list[Diagnostic], documents: int, notes: Sequence[Diagnostic] = ()
) -> str:
    return json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "ok": not diagnostics,
            "documents": documents,
            "errors": [d.as_dict() for d in diagnostics],
            "notes": [n.as_dict() for n in notes],
        },
        indent=2,
        ensure_ascii=False,
    )
