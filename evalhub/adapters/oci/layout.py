"""An OCI image layout directory (https://github.com/opencontainers/image-spec/blob/main/
image-layout.md): the embedded default target, `.evalhub/oci`.

    oci-layout           {"imageLayoutVersion": "1.0.0"}
    index.json           an image index; each tagged manifest is listed once with the
                         annotation org.opencontainers.image.ref.name = its tag
    blobs/sha256/<hex>   every blob and manifest, by digest

Writes are atomic (temporary file, then os.replace) and index.json is read-modified-written
under an exclusive lock on the sibling file `<dir>.lock`, so concurrent applies never lose a
tag. A layout has no referrers API: referrers live in the sha256-<hex> fallback index.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalhub.adapters.files import file_lock, write_atomic
from evalhub.adapters.oci.artifact import INDEX, REF_NAME, digest_of, manifest_bytes, parse_json
from evalhub.adapters.oci.references import DIGEST
from evalhub.core.errors import PublishError

LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}


class OciLayout:
    def __init__(self, path: Path, display: str | None = None) -> None:
        self.path = path
        self.display = display or f"oci-layout:{path}"

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
            return None
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

    def _index(self) -> dict[str, Any]:
        try:
            data = (self.path / "index.json").read_bytes()
        except FileNotFoundError:
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

    @contextlib.contextmanager
    def _locked_index(self) -> Iterator[dict[str, Any]]:
        self._ensure()
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            with file_lock(lock_path):
                index = self._index()
                yield index
                write_atomic(self.path / "index.json", manifest_bytes(index))
        except OSError as exc:
            raise PublishError(f"cannot write {self.display}: {exc}") from exc


def _tag_of(entry: dict[str, Any]) -> str | None:
    annotations = entry.get("annotations")
    tag = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return tag if isinstance(tag, str) else None
