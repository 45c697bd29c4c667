"""How a unit's result leaves a pod: one line of its log, after a marker.

`evalhub run-unit --bundle` ends by printing `evalhub-result-bundle/v1 sha256:<hex> <base64>`:
a gzipped tar of result.json and the adapter's output/ directory (both already redacted by
run-unit), with the digest of the archive. The executor reads the pod's log, takes the last such
line, checks the digest and unpacks it into the unit's local work directory, where the recorder
finds the same files the local executor leaves. The log is the one channel every cluster gives
without extra credentials or storage; its limit is the kubelet's log rotation (10 MiB by default),
so a bundle is capped at MAX_BUNDLE_BYTES and a larger output fails the unit with that reason.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

MARKER = "evalhub-result-bundle/v1"
MAX_BUNDLE_BYTES = 6 * 1024 * 1024  # compressed; base64 makes it 8 MiB of log


class BundleError(Exception):
    """A bundle that is missing, damaged or unsafe."""


def pack(result_file: Path, output_dir: Path) -> str:
    """The bundle line of a unit's result and output (without a trailing newline)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        tar.add(result_file, arcname="result.json")
        if output_dir.is_dir():
            for path in sorted(output_dir.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    tar.add(path, arcname="output/" + path.relative_to(output_dir).as_posix())
    data = buffer.getvalue()
    if len(data) > MAX_BUNDLE_BYTES:
        # Still a result: the unit's own, without the raw output that cannot travel.
        return pack_result_only(result_file, len(data))
    digest = hashlib.sha256(data).hexdigest()
    return f"{MARKER} sha256:{digest} {base64.b64encode(data).decode('ascii')}"


def pack_result_only(result_file: Path, size: int) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(result_file, arcname="result.json")
        note = f"the unit's output was {size} bytes compressed, over {MAX_BUNDLE_BYTES}".encode()
        info = tarfile.TarInfo("output/.evalhub-output-too-large")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    return f"{MARKER} sha256:{digest} {base64.b64encode(data).decode('ascii')}"


def find(log: str) -> str | None:
    """The last bundle line of a pod's log."""
    found = None
    for line in log.splitlines():
        if line.startswith(MARKER + " "):
            found = line
    return found


def unpack(line: str, workdir: Path) -> None:
    """Check the bundle's digest and write result.json and output/ under `workdir`: regular
    files only, none outside it (a unit runs third-party code; its log is untrusted input)."""
    try:
        _, digest, payload = line.strip().split(" ")
        data = base64.b64decode(payload, validate=True)
    except ValueError as exc:
        raise BundleError(f"the result bundle in the pod's log is malformed ({exc})") from None
    if digest != "sha256:" + hashlib.sha256(data).hexdigest():
        raise BundleError("the result bundle in the pod's log does not match its digest")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                name = member.name
                parts = name.split("/")
                if not member.isfile() or name.startswith("/") or ".." in parts:
                    raise BundleError(f"the result bundle holds an unsafe entry {name!r}")
                if name != "result.json" and parts[0] != "output":
                    raise BundleError(f"the result bundle holds an unexpected entry {name!r}")
            tar.extractall(workdir, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"the result bundle cannot be unpacked ({exc})") from None
