"""The OCI artifacts evalhub writes, as bytes: result, attestation, referrers index.

Formats (OCI image spec 1.1, https://github.com/opencontainers/image-spec):

    result       image manifest, artifactType application/vnd.evalhub.result.v1+json,
                 empty config, layers result.json, spec.json, environment.json, annotations
                 org.opencontainers.image.{created,source,revision,title} and dev.evalhub.*;
                 tagged <evaluation>-<first 16 hex of the evaluation fingerprint>; when the
                 Model names an image, `subject` = that image's manifest (a referrer of it)
    attestation  image manifest, artifactType application/vnd.dsse.envelope.v1+json, one
                 layer (the DSSE envelope JSON), `subject` = the result manifest
    on the image the same result manifest and an attestation manifest holding the same DSSE
                 envelope with `subject` = the image, both listed among the image's referrers
    referrers    image index at tag sha256-<hex of the subject> listing the attestations with
                 their artifactType and annotations (the distribution spec's fallback for
                 registries without the referrers API, such as docker-registry 2.8)

Manifests are serialised once, here; their digest is sha256 over exactly these bytes, and
copying an artifact copies the bytes, so digests never change on the way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalhub.core.result import EvaluationResult, json_bytes

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
RESULT_TYPE = "application/vnd.evalhub.result.v1+json"
SPEC_TYPE = "application/vnd.evalhub.spec.v1+json"
ENVIRONMENT_TYPE = "application/vnd.evalhub.environment.v1+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"

CREATED = "org.opencontainers.image.created"
SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"  # a tag, inside an OCI image layout

EVALUATION = "dev.evalhub.evaluation"
FINGERPRINT = "dev.evalhub.fingerprint"
MODEL = "dev.evalhub.model"
COLLECTION = "dev.evalhub.collection"
VERDICT = "dev.evalhub.verdict"
MLFLOW_RUN = "dev.evalhub.mlflow.run-id"
VERSION = "dev.evalhub.version"
PREDICATE_TYPE = "dev.evalhub.predicate-type"
KEY_ID = "dev.evalhub.key-id"
RESULT = "dev.evalhub.result"  # on an attestation attached to a model image: the result's digest

LAYERS = {"result.json": RESULT_TYPE, "spec.json": SPEC_TYPE, "environment.json": ENVIRONMENT_TYPE}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(
    media_type: str, data: bytes, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Artifact:
    """A manifest and the blobs it names (config and layers)."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> content

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    def descriptor(self) -> dict[str, Any]:
        return referrer_descriptor(self.manifest)


def result_artifact(
    result: EvaluationResult,
    environment: Mapping[str, Any],
    subject: Mapping[str, Any] | None = None,
) -> Artifact:
    """The result manifest and its blobs; `subject` (a descriptor of the model's image
    manifest, for a Model with an image) makes the result a referrer of that image."""
    contents = {
        "result.json": json_bytes(result.record().model_dump(mode="json")),
        "spec.json": json_bytes(result.resolved.model_dump(mode="json")),
        "environment.json": json_bytes(_jsonable(environment)),
    }
    layers = [descriptor(LAYERS[name], data, {TITLE: name}) for name, data in contents.items()]
    annotations = {
        CREATED: result.created,
        TITLE: f"evalhub result of {result.evaluation}",
        EVALUATION: result.evaluation,
        FINGERPRINT: result.fingerprint,
        MODEL: result.model,
        VERDICT: result.verdict,
        VERSION: result.evalhub_version,
    }
    optional = {
        SOURCE: result.source,
        REVISION: result.spec_commit,
        COLLECTION: result.collection,
        MLFLOW_RUN: result.mlflow.run_id,
    }
    annotations.update({k: v for k, v in optional.items() if v})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": RESULT_TYPE,
        "config": descriptor(EMPTY, EMPTY_BLOB),
        "layers": layers,
        "annotations": annotations,
    }
    if subject is not None:
        manifest["subject"] = {k: subject[k] for k in ("mediaType", "digest", "size")}
    blobs = {digest_of(EMPTY_BLOB): EMPTY_BLOB}
    blobs.update({digest_of(data): data for data in contents.values()})
    return Artifact(manifest_bytes(manifest), blobs)


def attestation_artifact(
    envelope: bytes, subject: Mapping[str, Any], annotations: Mapping[str, str]
) -> Artifact:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": DSSE_TYPE,
        "config": descriptor(EMPTY, EMPTY_BLOB),
        "layers": [descriptor(DSSE_TYPE, envelope, {TITLE: "attestation.dsse.json"})],
        "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
        "annotations": dict(annotations),
    }
    blobs = {digest_of(EMPTY_BLOB): EMPTY_BLOB, digest_of(envelope): envelope}
    return Artifact(manifest_bytes(manifest), blobs)


def referrer_descriptor(manifest: bytes) -> dict[str, Any]:
    """The descriptor of a manifest as a referrers list holds it: with its artifactType
    (or config media type) and annotations."""
    value = parse_json(manifest)
    out = descriptor(value.get("mediaType", MANIFEST), manifest)
    config = value.get("config")
    config = config if isinstance(config, dict) else {}
    artifact_type = value.get("artifactType") or config.get("mediaType")
    if artifact_type:
        out["artifactType"] = artifact_type
    if isinstance(value.get("annotations"), dict) and value["annotations"]:
        out["annotations"] = value["annotations"]
    return out


def referrers_tag(digest: str) -> str:
    """The fallback tag of `digest`'s referrers: `<alg>-<hex>` (distribution spec 1.1)."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}"[:128]


def referrers_list(index: bytes | None) -> list[dict[str, Any]]:
    if index is None:
        return []
    manifests = parse_json(index).get("manifests")
    return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


def add_referrer(index: bytes | None, entry: Mapping[str, Any]) -> bytes | None:
    """The referrers index with `entry` added, or None when it is already listed."""
    current = referrers_list(index)
    if any(m.get("digest") == entry["digest"] for m in current):
        return None
    return manifest_bytes(
        {"schemaVersion": 2, "mediaType": INDEX, "manifests": [*current, dict(entry)]}
    )


def parse_json(data: bytes) -> dict[str, Any]:
    """A JSON object, or {} when `data` is not one (the caller reports what is missing)."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _jsonable(value: Any) -> Any:
    """Plain JSON: odd values as strings, NaN and infinities as null."""
    return json.loads(json.dumps(value, default=str), parse_constant=lambda _: None)
