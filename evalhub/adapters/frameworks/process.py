"""What the framework adapters share about the processes they run."""

from __future__ import annotations

import re
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def log_tail(log: Path, lines: int = 6) -> str:
    """The last lines of a framework's log, joined with ` | `, for a unit's failure reason:
    colours dropped, and of a progress bar redrawn with carriage returns only its last state."""
    # Bytes, not read_text: universal newlines would turn tqdm's "\r" redraws into lines.
    raw = log.read_bytes().decode("utf-8", errors="replace") if log.exists() else ""
    text = ANSI.sub("", raw)
    kept = [line.split("\r")[-1].strip() for line in text.split("\n")]
    return " | ".join([line for line in kept if line][-lines:])
