"""The result bundle a pod prints in its log: it round-trips, and a damaged or hostile one is
refused rather than unpacked (a pod runs third-party code; its log is untrusted)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from evalhub.adapters.executors import bundle


def unit_files(tmp_path: Path) -> tuple[Path, Path]:
    result = tmp_path / "pod" / "result.json"
    output = tmp_path / "pod" / "output"
    (output / "samples").mkdir(parents=True)
    result.write_text('{"status": "succeeded"}')
    (output / "samples" / "rows.jsonl").write_bytes(b'{"id": 1}\n' * 100)
    return result, output


def test_a_bundle_round_trips_through_a_log(tmp_path: Path) -> None:
    result, output = unit_files(tmp_path)
    line = bundle.pack(result, output)
    log = f"progress...\n{line}\nexit\n"
    found = bundle.find(log)
    assert found == line
    bundle.unpack(found, tmp_path / "here")
    assert (tmp_path / "here" / "result.json").read_text() == result.read_text()
    copied = tmp_path / "here" / "output" / "samples" / "rows.jsonl"
    assert copied.read_bytes() == (output / "samples" / "rows.jsonl").read_bytes()


def test_a_changed_bundle_fails_its_digest(tmp_path: Path) -> None:
    line = bundle.pack(*unit_files(tmp_path))
    marker, digest, payload = line.split(" ")
    data = bytearray(base64.b64decode(payload))
    data[-10] ^= 0xFF
    tampered = f"{marker} {digest} {base64.b64encode(bytes(data)).decode()}"
    with pytest.raises(bundle.BundleError, match="does not match its digest"):
        bundle.unpack(tampered, tmp_path / "here")
    assert not (tmp_path / "here" / "result.json").exists()


def hostile(name: str, link: bool = False) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        if link:
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    return f"{bundle.MARKER} sha256:{digest} {base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (hostile("../escape.txt"), "unsafe entry"),
        (hostile("/etc/cron.d/x"), "unsafe entry"),
        (hostile("output/link", link=True), "unsafe entry"),
        (hostile("elsewhere.txt"), "unexpected entry"),
        (f"{bundle.MARKER} sha256:00 not-base64!", "malformed"),
    ],
)
def test_a_hostile_bundle_is_refused(tmp_path: Path, line: str, problem: str) -> None:
    with pytest.raises(bundle.BundleError, match=problem):
        bundle.unpack(line, tmp_path / "here")
    assert not (tmp_path / "escape.txt").exists()


def test_output_too_large_for_a_log_keeps_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, output = unit_files(tmp_path)
    (output / "big.bin").write_bytes(bytes(range(256)) * 4096)
    monkeypatch.setattr(bundle, "MAX_BUNDLE_BYTES", 1024)
    bundle.unpack(bundle.pack(result, output), tmp_path / "here")
    assert (tmp_path / "here" / "result.json").read_text() == result.read_text()
    assert not (tmp_path / "here" / "output" / "big.bin").exists()
    assert "over 1024" in (tmp_path / "here" / "output" / ".evalhub-output-too-large").read_text()
