"""Rebuilding an OCI layout's index.json from its blobs.

index.json is derived data: every result manifest names its evaluation and fingerprint (so its
tag, `<evaluation>-<fingerprint[:16]>`), and every attestation manifest names its `subject`
(so the sha256-<hex> referrers index it belongs in). When index.json is lost, or was rewritten
holding only newer entries, the blobs say what it should list; nothing is re-signed.

Only blobs whose content hashes to their name are trusted as evidence here; verification
re-checks everything anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.adapters.oci.artifact import (
    CREATED,
    DSSE_TYPE,
    EVALUATION,
    FINGERPRINT,
    INDEX,
    MANIFEST,
    REF_NAME,
    RESULT_TYPE,
    add_referrer,
    digest_of,
    parse_json,
    referrer_descriptor,
    referrers_tag,
)
from evalhub.core.result import result_tag

MANIFEST_LIMIT = 256 << 10  # evalhub's manifests are a few KB; bigger blobs are layers
MARKERS = (RESULT_TYPE.encode(), DSSE_TYPE.encode())  # cheap test before hashing and parsing


@dataclass
class Found:
    """What the blobs hold: the newest result manifest of each tag, and each subject's
    attestation manifests (oldest first)."""

    tags: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # tag -> (created, manifest)
    referrers: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)


def scan(blobs: Path) -> Found:
    found = Found()
    try:
        paths = sorted(blobs.iterdir())
    except OSError:  # no layout yet, or not a directory: nothing to recover
        return found
    for path in paths:
        data = _manifest_bytes(path)
        if data is None:
            continue
        value = parse_json(data)
        annotations = value.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        created = str(annotations.get(CREATED) or "")
        if value.get("artifactType") == RESULT_TYPE:
            evaluation, fingerprint = annotations.get(EVALUATION), annotations.get(FINGERPRINT)
            if isinstance(evaluation, str) and isinstance(fingerprint, str):
                tag = result_tag(evaluation, fingerprint)
                if tag not in found.tags or found.tags[tag][0] < created:
                    found.tags[tag] = (created, data)
        elif value.get("artifactType") == DSSE_TYPE:
            subject = value.get("subject")
            digest = subject.get("digest") if isinstance(subject, dict) else None
            if isinstance(digest, str):
                found.referrers.setdefault(digest, []).append((created, data))
    for entries in found.referrers.values():
        entries.sort(key=lambda e: (e[0], digest_of(e[1])))
    return found


def _manifest_bytes(path: Path) -> bytes | None:
    try:
        if not path.is_file() or path.stat().st_size > MANIFEST_LIMIT:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not any(marker in data for marker in MARKERS):
        return None
    if digest_of(data) != f"sha256:{path.name}":
        return None
    return data if parse_json(data).get("mediaType") == MANIFEST else None


def restore(
    index: dict[str, Any],
    found: Found,
    get_blob: Callable[[str], bytes | None],
    put_blob: Callable[[str, bytes], None],
) -> bool:
    """Add to `index` (an image index, changed in place) the tags and referrers the blobs
    prove and it lacks; tags it already lists are kept as they are. True when it changed."""
    entries: list[dict[str, Any]] = index["manifests"]
    listed = {_tag_of(e): e for e in entries if _tag_of(e)}
    changed = False
    for tag, (_, manifest) in sorted(found.tags.items()):
        if tag not in listed:
            entries.append(_tagged(referrer_descriptor(manifest), tag))
            changed = True
    for subject, attached in sorted(found.referrers.items()):
        tag = referrers_tag(subject)
        current = listed.get(tag)
        digest = current.get("digest") if current else None
        data = get_blob(digest) if isinstance(digest, str) else None
        updated = None
        for _, manifest in attached:
            updated = add_referrer(updated or data, referrer_descriptor(manifest)) or updated
        if updated is None:
            continue
        put_blob(digest_of(updated), updated)
        entries[:] = [e for e in entries if _tag_of(e) != tag]
        entries.append(_tagged({"mediaType": INDEX, **_plain(updated)}, tag))
        changed = True
    return changed


def _tagged(descriptor: dict[str, Any], tag: str) -> dict[str, Any]:
    entry: dict[str, Any] = {k: descriptor[k] for k in ("mediaType", "digest", "size")}
    if "artifactType" in descriptor:
        entry["artifactType"] = descriptor["artifactType"]
    entry["annotations"] = {REF_NAME: tag}
    return entry


def _plain(data: bytes) -> dict[str, Any]:
    return {"digest": digest_of(data), "size": len(data)}


def _tag_of(entry: dict[str, Any]) -> str | None:
    annotations = entry.get("annotations")
    tag = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return tag if isinstance(tag, str) else None
