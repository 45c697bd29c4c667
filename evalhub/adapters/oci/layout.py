"""An OCI image layout directory (https://github.com/opencontainers/image-spec/blob/main/
image-layout.md): the embedded default target, `.evalhub/oci`.

    oci-layout           {"imageLayoutVersion": "1.0.0"}
    index.json           an image index; each tagged manifest is listed once with the
                         annotation org.opencontainers.image.ref.name = its tag
    blobs/sha256/<hex>   every blob and manifest, by digest

Writes are atomic (temporary file, then os.replace) and index.json is read-modified-written
under an exclusive lock on the sibling file `<dir>.lock`, so concurrent applies never lose a
tag. A layout has no referrers API: referrers live in the sha256-<hex> fallback index.

index.json is derived from the blobs (recovery.py): when it is missing, reads see the index the
blobs prove, and `recover` writes back what a short index.json lacks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from evalhub.adapters.files import file_lock, write_atomic
from evalhub.adapters.oci.artifact import INDEX, REF_NAME, digest_of, manifest_bytes, parse_json
from evalhub.adapters.oci.recovery import restore, scan
from evalhub.adapters.oci.references import DIGEST
from evalhub.core.errors import PublishError

LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}


class OciLayout:
    def __init__(self, path: Path, display: str | None = None) -> None:
        self.path = path
        self.display = display or f"oci-layout:{path}"
        self._rebuilt: dict[str, Any] | None = None  # index.json lost: the blobs' index
        self._virtual: dict[str, bytes] = {}  # referrers indexes of _rebuilt, not written

    # -- blobs --------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self._blob_path(digest).is_file()

    def put_blob(self, digest: str, data: bytes) -> None:
        if digest_of(data) != digest:
            raise PublishError(f"refusing to store blob {digest}: its content hashes otherwise")
        self._ensure()
        write_atomic(self._blob_path(digest), data)

    def get_blob(self, digest: str) -> bytes | None:
        try:
            return self._blob_path(digest).read_bytes()
        except FileNotFoundError:
            return self._virtual.get(digest)
        except OSError as exc:
            raise PublishError(f"cannot read {self.display}: {exc}") from exc

    # -- manifests ----------------------------------------------------------------------------

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> bool:
        digest = digest_of(data)
        if DIGEST.match(reference) and reference != digest:
            raise PublishError(
                f"refusing to store manifest {reference}: its content hashes otherwise"
            )
        self.put_blob(digest, data)
        if not DIGEST.match(reference):
            with self._locked_index() as index:
                entry = {"mediaType": media_type, "digest": digest, "size": len(data)}
                artifact_type = parse_json(data).get("artifactType")
                if isinstance(artifact_type, str):
                    entry["artifactType"] = artifact_type
                entry["annotations"] = {REF_NAME: reference}
                manifests = [m for m in index["manifests"] if _tag_of(m) != reference]
                index["manifests"] = [*manifests, entry]
        return False

    def has_manifest(self, digest: str) -> bool:
        return self.has_blob(digest)

    def missing(self, digests: Collection[str]) -> set[str]:
        """Which of `digests` have no blob here (one directory listing); the index is
        recovered first, so whatever is held can be found by tag and referrers again."""
        self.recover()
        try:
            held = {f"sha256:{p.name}" for p in (self.path / "blobs" / "sha256").iterdir()}
        except FileNotFoundError:
            held = set()
        except OSError as exc:
            raise PublishError(f"cannot read {self.display}: {exc}") from exc
        return set(digests) - held

    def recover(self) -> bool:
        """Add to index.json the tags and referrers its blobs prove and it lacks (a lost or
        rewritten index.json); True when it changed. Nothing is re-signed or moved."""
        if not (self.path / "blobs" / "sha256").is_dir():
            return False
        found = scan(self.path / "blobs" / "sha256")
        lost = not (self.path / "index.json").exists()
        if not lost and not restore(self._index(), found, self.get_blob, lambda d, b: None):
            return False
        with self._locked_index() as index:
            restore(index, found, self.get_blob, self.put_blob)
        return True

    def get_manifest(self, reference: str) -> bytes | None:
        if DIGEST.match(reference):
            return self.get_blob(reference)
        digest = self.resolve(reference)
        return None if digest is None else self.get_blob(digest)

    def resolve(self, tag: str) -> str | None:
        for entry in self._index()["manifests"]:
            if _tag_of(entry) == tag and isinstance(entry.get("digest"), str):
                return str(entry["digest"])
        return None

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        return None

    def tags(self) -> list[str]:
        return [t for t in (_tag_of(m) for m in self._index()["manifests"]) if t]

    def entries(self) -> list[dict[str, Any]]:
        """index.json's descriptors (tagged results and referrers indexes)."""
        return list(self._index()["manifests"])

    # -- files --------------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise PublishError(f"{digest!r} is not a sha256 digest")
        return self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def _ensure(self) -> None:
        try:
            (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            if not (self.path / "oci-layout").is_file():
                write_atomic(self.path / "oci-layout", json.dumps(LAYOUT_FILE).encode())
        except OSError as exc:
            raise PublishError(f"cannot write {self.display}: {exc}") from exc

    def _index(self, from_blobs: bool = True) -> dict[str, Any]:
        try:
            data = (self.path / "index.json").read_bytes()
        except FileNotFoundError:
            if from_blobs:
                return self._from_blobs()
            return {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
        except OSError as exc:
            raise PublishError(f"cannot read {self.display}: {exc}") from exc
        index = parse_json(data)
        if not isinstance(index.get("manifests"), list):
            raise PublishError(
                f"{self.path / 'index.json'} is not an OCI image index",
                "restore it from a backup, or move the layout away to start a new one",
            )
        index["manifests"] = [m for m in index["manifests"] if isinstance(m, dict)]
        return index

    def _from_blobs(self) -> dict[str, Any]:
        """The index the blobs prove (empty for a new layout), built once per instance."""
        if self._rebuilt is None:
            index: dict[str, Any] = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
            found = scan(self.path / "blobs" / "sha256")
            restore(index, found, self.get_blob, self._virtual.__setitem__)
            self._rebuilt = index
        return {**self._rebuilt, "manifests": list(self._rebuilt["manifests"])}

    @contextlib.contextmanager
    def _locked_index(self) -> Iterator[dict[str, Any]]:
        self._ensure()
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._rebuilt, self._virtual = None, {}  # under the lock, read the blobs again
        try:
            with file_lock(lock_path):
                index = self._index(from_blobs=False)
                if not (self.path / "index.json").exists():  # lost: rebuilt from the blobs
                    restore(
                        index, scan(self.path / "blobs" / "sha256"), self.get_blob, self.put_blob
                    )
                yield index
                write_atomic(self.path / "index.json", manifest_bytes(index))
        except OSError as exc:
            raise PublishError(f"cannot write {self.display}: {exc}") from exc


def _tag_of(entry: dict[str, Any]) -> str | None:
    annotations = entry.get("annotations")
    tag = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return tag if isinstance(tag, str) else None
