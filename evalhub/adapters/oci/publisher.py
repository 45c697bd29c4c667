"""The Publisher port over an OCI target (registry or image layout).

Order of a publish: the result (blobs, then the manifest at its content-derived tag); then the
attestation, whose subject is the result's digest, and the referrers fallback index.
Publishing the same result again pushes nothing new and reuses its attestation by the same
key, so a retried publish never piles up signatures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.adapters.oci.artifact import (
    CREATED,
    DSSE_TYPE,
    EVALUATION,
    FINGERPRINT,
    KEY_ID,
    MANIFEST,
    PREDICATE_TYPE,
    RESULT,
    RESULT_TYPE,
    VERDICT,
    Artifact,
    attestation_artifact,
    descriptor,
    digest_of,
    parse_json,
    result_artifact,
)
from evalhub.adapters.oci.attestations import Rejected, check_attestation
from evalhub.adapters.oci.layout import OciLayout
from evalhub.adapters.oci.references import Reference, Target, parse_reference
from evalhub.adapters.oci.store import OciStore, artifact_of, attach, copy, push, referrers
from evalhub.core import attestation
from evalhub.core.errors import PublishError
from evalhub.core.project import Registry
from evalhub.core.publication import Copied, Published
from evalhub.core.result import EvaluationResult
from evalhub.ports import Publisher, Signer

if TYPE_CHECKING:
    from evalhub.adapters.oci.registry import Credentials

REFERRERS_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


class OciPublisher:
    """Publishes to one OCI store; `target` is how evalhub.yaml names it. `images` opens the
    registry of a Model's image (results of a Model with an image are attached to it too)."""

    def __init__(
        self,
        store: OciStore,
        target: Target,
        images: Callable[[Target], OciStore] | None = None,
    ) -> None:
        self.store = store
        self.target = str(target)
        self.images = images

    def publish(
        self, result: EvaluationResult, environment: Mapping[str, Any], signer: Signer
    ) -> Published:
        image = self._model_image(result)
        artifact = result_artifact(result, environment, image.descriptor if image else None)
        digest = push(self.store, artifact, result.tag)
        reference = f"{self.target}:{result.tag}"
        signed = self._signed_by(digest, result, signer)
        if signed is None:
            about = (image.name, image.digest) if image else None
            statement = attestation.statement(result.record(), digest, about)
            envelope = signer.sign(attestation.statement_bytes(statement), attestation.PAYLOAD_TYPE)
            annotations = {
                CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
                PREDICATE_TYPE: attestation.PREDICATE_TYPE,
                KEY_ID: signer.key.key_id,
            }
            signed = attestation_artifact(
                envelope, descriptor(MANIFEST, artifact.manifest), annotations
            )
            attach(self.store, digest, signed)
        if image is not None:
            image.attach(artifact, signed, result)
        return Published(reference, digest, signed.digest, signer.key.key_id)

    def _model_image(self, result: EvaluationResult) -> ModelImage | None:
        image = result.resolved.model.image
        if image is None:
            return None
        reference = model_image_reference(image)
        if self.images is None:
            raise PublishError(f"cannot reach the registry of the model image {image}")
        return ModelImage(self.images(reference.target), reference)

    def _signed_by(self, digest: str, result: EvaluationResult, signer: Signer) -> Artifact | None:
        """A valid attestation of this result by this key, already attached (a retried
        publish)."""
        own = signer.keyring()
        for entry in referrers(self.store, digest, DSSE_TYPE):
            annotations = entry.get("annotations")
            if not isinstance(annotations, dict) or annotations.get(KEY_ID) != signer.key.key_id:
                continue
            try:
                check_attestation(self.store, entry, digest, result.record(), own)
            except Rejected:
                continue  # not ours after all, or damaged: sign again
            manifest = self.store.get_manifest(str(entry["digest"]))
            if manifest is not None:
                return artifact_of(self.store, manifest)
        return None

    def missing(self, digests: Collection[str]) -> set[str]:
        return self.store.missing(digests) if digests else set()

    def result_tags(self) -> list[str]:
        self.store.recover()
        return [t for t in self.store.tags() if self._is_result(t)]

    def _is_result(self, tag: str) -> bool:
        if REFERRERS_TAG.match(tag):
            return False
        manifest = self.store.get_manifest(tag)
        return manifest is not None and parse_json(manifest).get("artifactType") == RESULT_TYPE

    def copy_to(self, destination: Publisher, tag: str) -> Copied:
        if not isinstance(destination, OciPublisher):
            raise PublishError(f"cannot copy from {self.target} to {destination.target}")
        return copy(self.store, destination.store, tag)


def model_image_reference(image: str) -> Reference:
    """A Model's `image` (HOST[:PORT]/REPOSITORY[:TAG]@sha256:HEX) as a registry reference."""
    return parse_reference(f"oci://{image}")


class ModelImage:
    """A Model's image in its registry, which evalhub's results are attached to."""

    def __init__(self, store: OciStore, reference: Reference) -> None:
        assert reference.digest is not None
        self.store = store
        self.reference = reference
        self.digest = reference.digest
        self.name = str(Reference(reference.target)).removeprefix("oci://")
        self.descriptor = self._descriptor()

    def _descriptor(self) -> dict[str, Any]:
        manifest = self.store.get_manifest(self.digest)
        if manifest is None:
            raise PublishError(
                f"the model image {self.name}@{self.digest} is not in its registry",
                "push the model's image first (docs/model-images.md), or fix `image` in the "
                "Model spec; the result stays recorded and is published by the next apply",
            )
        if digest_of(manifest) != self.digest:
            raise PublishError(
                f"the registry {self.store.display} answered {self.digest} with a manifest "
                f"that hashes to {digest_of(manifest)}"
            )
        media_type = parse_json(manifest).get("mediaType")
        return descriptor(media_type if isinstance(media_type, str) else MANIFEST, manifest)

    def attach(self, result: Artifact, signed: Artifact, evaluation: EvaluationResult) -> None:
        """List the result and an attestation holding the same envelope among the image's
        referrers. Deterministic (the attestation keeps the first one's annotations), so a
        retried publish adds nothing."""
        attach(self.store, self.digest, result)
        value = parse_json(signed.manifest)
        layers = [
            str(layer.get("digest"))
            for layer in value.get("layers") or []
            if isinstance(layer, dict) and layer.get("mediaType") == DSSE_TYPE
        ]
        envelope = signed.blobs.get(layers[0]) if len(layers) == 1 else None
        if envelope is None:
            raise PublishError("the attestation to attach to the model image has no envelope")
        annotations = dict(value.get("annotations") or {})
        annotations.update(
            {
                EVALUATION: evaluation.evaluation,
                FINGERPRINT: evaluation.fingerprint,
                VERDICT: evaluation.verdict,
                RESULT: result.digest,
            }
        )
        signed_image = attestation_artifact(envelope, self.descriptor, annotations)
        attach(self.store, self.digest, signed_image)


def open_store(
    target: Target,
    settings: Registry,
    root: Path,
    insecure: bool | None = None,
    timeout: float | None = None,
) -> OciStore:
    """The store behind `target`: a layout directory (relative to the project `root`) or a
    registry with the settings' credentials, `insecure` (None: the setting) and timeout."""
    if target.kind == "layout":
        path = Path(target.location)
        if not path.is_absolute():
            path = root / path
        return OciLayout(path, str(target))
    # A registry's client (requests) is imported only for a registry: a layout needs none.
    from evalhub.adapters.oci.registry import OciRegistry

    plain = settings.insecure if insecure is None else insecure
    seconds = timeout if timeout is not None else settings.timeout_seconds
    return OciRegistry(target, credentials(settings, root), insecure=plain, timeout=seconds)


def credentials(settings: Registry, root: Path) -> Credentials:
    """The registry credentials, first found wins: a token variable, user and password
    variables, a docker config file. `source` says where they came from, never the values."""
    from evalhub.adapters.oci.registry import Credentials

    if settings.token_env:
        token = os.environ.get(settings.token_env)
        source = f"${settings.token_env}" + ("" if token else " (not set)")
        return Credentials(token=token or None, source=source)
    if settings.username_env or settings.password_env:
        user = os.environ.get(settings.username_env) if settings.username_env else None
        password = os.environ.get(settings.password_env) if settings.password_env else None
        names = [n for n in (settings.username_env, settings.password_env) if n]
        missing = [n for n in names if not os.environ.get(n)]
        source = " and ".join(f"${n}" for n in names)
        if missing:
            source += " (not set: " + ", ".join(f"${n}" for n in missing) + ")"
        if user and password:
            return Credentials(username=user, password=password, source=source)
        return Credentials(source=source)
    config = _docker_config(settings, root)
    return Credentials(docker_config=config, source=f"the docker config {config}")


def _docker_config(settings: Registry, root: Path) -> Path:
    if settings.docker_config:
        return root / settings.docker_config
    home = os.environ.get("DOCKER_CONFIG")
    return Path(home) / "config.json" if home else Path.home() / ".docker" / "config.json"
