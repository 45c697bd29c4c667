"""Escaping text for HTML and SVG (the report writes both by hand)."""

from __future__ import annotations


def escape(text: str) -> str:
    """`text` safe as element content and as a quoted attribute value (& first)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )
