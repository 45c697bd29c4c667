"""Escaping text for HTML and SVG (the report writes both by hand)."""

from __future__ import annotations

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}


def escape(text: str) -> str:
    """`text` safe as element content and as a quoted attribute value."""
    return "".join(_ENTITIES.get(c, c) for c in text)
