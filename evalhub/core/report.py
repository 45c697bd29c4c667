"""Rendering validation results: text for people, versioned JSON for tools."""

from __future__ import annotations

import json

from evalhub.core.errors import Diagnostic

FORMAT_VERSION = 1


def validation_text(diagnostics: list[Diagnostic], documents: int) -> str:
    if not diagnostics:
        return f"✓ {documents} document{'s' if documents != 1 else ''} valid"
    body = "\n".join(d.render() for d in diagnostics)
    count = len(diagnostics)
    return (
        f"{body}\n\n✗ {count} problem{'s' if count != 1 else ''} "
        f"in {documents} document{'s' if documents != 1 else ''}"
    )


def validation_json(diagnostics: list[Diagnostic], documents: int) -> str:
    return json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "ok": not diagnostics,
            "documents": documents,
            "errors": [d.as_dict() for d in diagnostics],
        },
        indent=2,
        ensure_ascii=False,
    )
