"""Masking secrets in the files a unit left (its adapter's logs and raw output), in place."""

from __future__ import annotations

import os
from pathlib import Path

from evalhub.core.redact import Redactor


def redact_tree(directory: Path, redactor: Redactor) -> None:
    """Rewrite every regular file under `directory` that holds a secret, atomically (a reader
    sees the old file or the masked one). Symlinks are not followed: what they point to is not
    the unit's to write."""
    if not redactor or not directory.is_dir():
        return
    for path in directory.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        clean = redactor.bytes(data)
        if clean != data:
            tmp = path.with_name(path.name + ".redacting")
            tmp.write_bytes(clean)
            os.replace(tmp, path)
