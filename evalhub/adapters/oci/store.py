"""What evalhub needs of an OCI target, and the operations built on it.

A registry (registry.py) and an image layout directory (layout.py) both provide `OciStore`;
pushing, attaching referrers and copying are written once, against it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from evalhub.adapters.oci.artifact import (
    INDEX,
    MANIFEST,
    Artifact,
    add_referrer,
    parse_json,
    referrers_list,
    referrers_tag,
)
from evalhub.core.errors import PublishError
from evalhub.core.publication import Copied


class OciStore(Protocol):
    """Content-addressed blobs and manifests in one repository. Failures raise PublishError."""

    display: str  # shown in messages, e.g. oci://127.0.0.1:5000/evalhub; never credentials

    def has_blob(self, digest: str) -> bool: ...

    def put_blob(self, digest: str, data: bytes) -> None: ...

    def get_blob(self, digest: str) -> bytes | None:
        """The blob's bytes as stored (unchecked: the caller re-hashes), None if absent."""
        ...

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> bool:
        """Store a manifest under a tag or its digest. True when the store indexed the
        manifest's `subject` itself (a registry with the referrers API answers OCI-Subject)."""
        ...

    def get_manifest(self, reference: str) -> bytes | None:
        """The manifest's bytes by tag or digest, None if absent."""
        ...

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        """The referrers API's answer, or None when the store has no referrers API."""
        ...

    def tags(self) -> list[str]: ...

    def has_manifest(self, digest: str) -> bool: ...

    def missing(self, digests: Collection[str]) -> set[str]:
        """Which manifests of `digests` the store does not hold."""
        ...

    def recover(self) -> bool:
        """Re-derive what the store lists from what it holds (a layout's index.json); True
        when something was restored."""
        ...


def push(store: OciStore, artifact: Artifact, tag: str | None = None) -> str:
    """Push blobs the store lacks, then the manifest (by tag, or by digest); its digest."""
    for digest, data in artifact.blobs.items():
        if not store.has_blob(digest):
            store.put_blob(digest, data)
    store.put_manifest(tag or artifact.digest, artifact.manifest, _media_type(artifact.manifest))
    return artifact.digest


def attach(store: OciStore, subject: str, referrer: Artifact) -> str:
    """Push `referrer` (whose manifest names `subject`) and list it among the subject's
    referrers: the store does that itself when it has the referrers API; otherwise the
    fallback index at tag sha256-<hex> is read, extended and written back."""
    for digest, data in referrer.blobs.items():
        if not store.has_blob(digest):
            store.put_blob(digest, data)
    indexed = store.put_manifest(referrer.digest, referrer.manifest, MANIFEST)
    if not indexed:
        tag = referrers_tag(subject)
        updated = add_referrer(store.get_manifest(tag), referrer.descriptor())
        if updated is not None:
            store.put_manifest(tag, updated, INDEX)
    return referrer.digest


def referrers(
    store: OciStore, subject: str, artifact_type: str | None = None
) -> list[dict[str, Any]]:
    """Descriptors of the manifests that name `subject`, by the referrers API or the tag
    fallback, optionally only those of `artifact_type`."""
    found = store.referrers(subject)
    if found is None:
        found = referrers_list(store.get_manifest(referrers_tag(subject)))
    return [d for d in found if artifact_type is None or d.get("artifactType") == artifact_type]


def copy(source: OciStore, destination: OciStore, tag: str) -> Copied:
    """Copy the manifest at `tag`, its blobs and its referrers, byte for byte: every digest
    in the destination equals the source's."""
    manifest = source.get_manifest(tag)
    if manifest is None:
        raise PublishError(f"{source.display} has no {tag}")
    subject = _copy_manifest(source, destination, manifest, tag)
    copied = []
    for entry in referrers(source, subject):
        data = source.get_manifest(entry["digest"])
        if data is None:
            raise PublishError(
                f"{source.display} lists {entry['digest']} among the referrers of {tag} "
                "but does not hold it"
            )
        attach(destination, subject, artifact_of(source, data))
        copied.append(entry["digest"])
    return Copied(tag, subject, tuple(copied))


def _copy_manifest(source: OciStore, destination: OciStore, manifest: bytes, tag: str) -> str:
    artifact = artifact_of(source, manifest)
    return push(destination, artifact, tag)


def artifact_of(source: OciStore, manifest: bytes) -> Artifact:
    """The manifest with the blobs it names, fetched from `source`."""
    value = parse_json(manifest)
    blobs: dict[str, bytes] = {}
    config = value.get("config")
    layers = value.get("layers")
    named = ([config] if isinstance(config, dict) else []) + (
        layers if isinstance(layers, list) else []
    )
    for entry in named:
        digest = entry.get("digest") if isinstance(entry, dict) else None
        if not isinstance(digest, str):
            raise PublishError(f"{source.display} holds a manifest with a malformed descriptor")
        data = source.get_blob(digest)
        if data is None:
            raise PublishError(f"{source.display} is missing blob {digest}")
        blobs[digest] = data
    return Artifact(manifest, blobs)


def _media_type(manifest: bytes) -> str:
    media_type = parse_json(manifest).get("mediaType")
    return media_type if isinstance(media_type, str) else MANIFEST
