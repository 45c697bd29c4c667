"""Publishing results: push the result artifact, sign a statement about it, attach the
attestation; and copy published results from one target to another (`evalhub publish`).

Order: the signing key is loaded first (no key, nothing pushed); then the result (blobs, then
the manifest at its content-derived tag); then the attestation, whose subject is the result's
digest, and the referrers fallback index. Publishing the same result again pushes nothing new
and reuses its attestation by the same key, so a retried publish never piles up signatures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalhub.adapters.oci.artifact import (
    CREATED,
    DSSE_TYPE,
    KEY_ID,
    MANIFEST,
    PREDICATE_TYPE,
    RESULT_TYPE,
    attestation_artifact,
    descriptor,
    parse_json,
    result_artifact,
)
from evalhub.adapters.oci.attestations import Rejected, check_attestation
from evalhub.adapters.oci.layout import OciLayout
from evalhub.adapters.oci.references import Target, parse_target
from evalhub.adapters.oci.registry import Credentials, OciRegistry
from evalhub.adapters.oci.store import Copied, OciStore, attach, copy, push, referrers
from evalhub.adapters.signing import EnvelopeSigner
from evalhub.app.keys import load_signer
from evalhub.app.project import Project
from evalhub.core import attestation
from evalhub.core.errors import ConfigError, PublishError
from evalhub.core.result import EvaluationResult

REFERRERS_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


@dataclass(frozen=True)
class Published:
    """Where a result went. `reference` is `<target>:<tag>`; the digest is its identity."""

    reference: str
    digest: str
    attestation_digest: str
    key_id: str

    @property
    def pinned(self) -> str:
        """`<target>:<tag>@sha256:…`, what a ledger cites."""
        return f"{self.reference}@{self.digest}"


def publish_result(
    project: Project, result: EvaluationResult, environment: Mapping[str, Any]
) -> Published:
    """Publish and sign `result` to the project's registry target (`registry.target`).

    `environment` becomes the environment layer (python, packages, OS, machine). Every
    failure, a missing key or a bad registry setting included, is a PublishError: the caller
    has recorded the result already and can publish it later.
    """
    signer = load_signer(project)
    try:
        target = parse_target(project.config.registry.target)
        store = open_store(project, target)
    except ConfigError as exc:
        raise PublishError(f"registry.target: {exc.message}", exc.hint) from exc
    artifact = result_artifact(result, environment)
    tag = result.tag
    digest = push(store, artifact, tag)
    reference = f"{target}:{tag}"
    existing = _signed_by(store, digest, result, signer)
    if existing is not None:
        return Published(reference, digest, existing, signer.key_id)
    payload = attestation.statement_bytes(attestation.statement(result.record(), digest))
    envelope = signer.sign(payload, attestation.PAYLOAD_TYPE)
    annotations = {
        CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
        PREDICATE_TYPE: attestation.PREDICATE_TYPE,
        KEY_ID: signer.key_id,
    }
    signed = attestation_artifact(envelope, descriptor(MANIFEST, artifact.manifest), annotations)
    attach(store, digest, signed)
    return Published(reference, digest, signed.digest, signer.key_id)


def _signed_by(
    store: OciStore, digest: str, result: EvaluationResult, signer: EnvelopeSigner
) -> str | None:
    """A valid attestation of this result by this key, already attached (a retried publish)."""
    for entry in referrers(store, digest, DSSE_TYPE):
        annotations = entry.get("annotations")
        if not isinstance(annotations, dict) or annotations.get(KEY_ID) != signer.key_id:
            continue
        try:
            check_attestation(store, entry, digest, result.record(), [signer.public_key])
        except Rejected:
            continue  # not ours after all, or damaged: sign again
        return str(entry["digest"])
    return None


def check_publish_settings(project: Project) -> None:
    """Fail fast, before any unit runs, on what would make every publish fail: a malformed
    `registry.target`, plain HTTP to a remote host, no signing key. Touches no network."""
    target = parse_target(project.config.registry.target)
    open_store(project, target)
    load_signer(project)


def copy_results(
    project: Project,
    destination: str,
    source: str | None = None,
    tags: list[str] | None = None,
    insecure: bool | None = None,
) -> list[Copied]:
    """Copy results (every result tag of `source`, or `tags`) with their attestations to
    `destination`, digests unchanged. `source` defaults to the project's layout; `insecure`
    None means registry.insecure of evalhub.yaml."""
    origin = parse_target(source or _default_layout(project))
    target = parse_target(destination)
    if origin == target:
        raise ConfigError(f"{destination} is where the results are already")
    src = open_store(project, origin)
    dst = open_store(project, target, insecure=insecure)
    chosen = tags if tags else [t for t in src.tags() if _is_result(src, t)]
    if not chosen:
        raise PublishError(
            f"{src.display} holds no results to publish",
            "run `evalhub apply` first (it publishes to registry.target)",
        )
    return [copy(src, dst, tag) for tag in chosen]


def open_store(
    project: Project, target: Target, insecure: bool | None = None, base: Path | None = None
) -> OciStore:
    """The store behind `target`: a layout directory (relative to `base`, default the project
    root) or a registry with the project's credentials and `insecure` setting."""
    if target.kind == "layout":
        path = Path(target.location)
        if not path.is_absolute():
            path = (base or project.root) / path
        return OciLayout(path, str(target))
    settings = project.config.registry
    plain = settings.insecure if insecure is None else insecure
    return OciRegistry(target, credentials(project), insecure=plain)


def credentials(project: Project) -> Credentials:
    settings = project.config.registry
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
    config = _docker_config(project)
    return Credentials(docker_config=config, source=f"the docker config {config}")


def _docker_config(project: Project) -> Path:
    configured = project.config.registry.docker_config
    if configured:
        return project.root / configured
    home = os.environ.get("DOCKER_CONFIG")
    return Path(home) / "config.json" if home else Path.home() / ".docker" / "config.json"


def _default_layout(project: Project) -> str:
    configured = project.config.registry.target
    return configured if configured.startswith("oci-layout:") else "oci-layout:.evalhub/oci"


def _is_result(store: OciStore, tag: str) -> bool:
    if REFERRERS_TAG.match(tag):
        return False
    manifest = store.get_manifest(tag)
    return manifest is not None and parse_json(manifest).get("artifactType") == RESULT_TYPE
