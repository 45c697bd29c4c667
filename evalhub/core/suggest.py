"""'Did you mean …' for names a person mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A hint naming the closest candidate, or "" when none is close."""
    options = sorted(set(candidates))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f"did you mean {close[0]!r}?" if close else ""


def one_of(candidates: Iterable[str], limit: int = 12) -> str:
    options = sorted(set(candidates))
    shown = ", ".join(options[:limit]) + (", …" if len(options) > limit else "")
    return shown or "(none defined)"


def suggest(word: str, candidates: Iterable[str], what: str) -> str:
    """`did you mean 'x'?` when close, else the list of valid `what`."""
    options = list(candidates)
    return did_you_mean(word, options) or f"{what}: {one_of(options)}"
