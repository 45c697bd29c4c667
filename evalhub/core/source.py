"""Documents as loaded from spec files: plain data plus where each value came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A path into a document: mapping keys and sequence indexes, e.g. ("spec", "benchmarks", 0).
Path = tuple[str | int, ...]
# (line, column), both 1-based.
Position = tuple[int, int]


@dataclass(frozen=True)
class SourceDocument:
    """One YAML document: its data (JSON-like) and the source position of every node."""

    file: str  # as shown to the user
    index: int  # 0-based position of the document in its file
    data: Any
    start: Position = (1, 1)
    values: Mapping[Path, Position] = field(default_factory=dict)  # where each value starts
    keys: Mapping[Path, Position] = field(default_factory=dict)  # where each mapping key starts
    # Directory of the file relative to the spec root (posix, "" for the root): dataset paths
    # are relative to it and may not leave the root.
    directory: str = ""

    def position(self, path: Path, *, key: bool = False) -> Position:
        """The closest known position of `path`: the key itself when asked, else its value,
        falling back to the nearest ancestor."""
        probe = path
        while True:
            if key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return self.start
            probe = probe[:-1]
            key = False


def format_path(path: Path) -> str:
    """("spec", "benchmarks", 1, "weight") -> "spec.benchmarks[1].weight"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
