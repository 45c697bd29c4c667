"""`evalhub verify` catches tampering, each case with its own reason, against the real
registry (changed with plain HTTP requests, or on its disk) and against the layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.oci.artifact import (
    CREATED,
    INDEX,
    MANIFEST,
    Artifact,
    attestation_artifact,
    descriptor,
    manifest_bytes,
    referrers_tag,
)
from evalhub.adapters.oci.layout import OciLayout
from evalhub.adapters.signing import EnvelopeSigner, generate_key
from evalhub.app.keys import generate_keys
from evalhub.app.project import Project
from evalhub.app.publish import Published, publish_result
from evalhub.app.verify import Verification, verify_result
from evalhub.core import attestation
from evalhub.core.errors import ConfigError
from evalhub.core.result import EvaluationResult
from tests.conftest import run_cli
from tests.registry import (
    ENVIRONMENT,
    Registry,
    make_project,
    running_registry,
    sample_result,
    sha256,
)


@dataclass
class Target:
    """Where the results are, and an attacker's write access to it."""

    project: Project
    registry: Registry | None

    @property
    def layout(self) -> OciLayout:
        return OciLayout(self.project.root / ".evalhub" / "oci")

    def get_manifest(self, reference: str) -> bytes:
        data = (
            self.registry.get_manifest(reference)
            if self.registry
            else self.layout.get_manifest(reference)
        )
        assert data is not None, reference
        return data

    def get_blob(self, digest: str) -> bytes:
        if self.registry:
            return self.registry.get_blob(digest)
        data = self.layout.get_blob(digest)
        assert data is not None
        return data

    def put_blob(self, data: bytes) -> str:
        if self.registry:
            return self.registry.put_blob(data)
        self.layout.put_blob(sha256(data), data)
        return sha256(data)

    def put_manifest(self, reference: str, data: bytes, media_type: str = MANIFEST) -> None:
        if self.registry:
            self.registry.put_manifest(reference, data, media_type)
        else:
            self.layout.put_manifest(reference, data, media_type)

    def overwrite_blob(self, digest: str, data: bytes) -> None:
        """Replace a blob's bytes where they are stored, keeping its digest."""
        if self.registry:
            path = self.registry.blob_file(digest)
        else:
            path = self.layout.path / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert path.is_file()
        path.write_bytes(data)

    def drop_referrers(self, subject: str) -> None:
        tag = referrers_tag(subject)
        if self.registry:
            self.registry.delete_manifest(sha256(self.get_manifest(tag)))
        else:
            index_file = self.layout.path / "index.json"
            index = json.loads(index_file.read_bytes())
            index["manifests"] = [
                m for m in index["manifests"] if m["annotations"].get(REF_NAME) != tag
            ]
            index_file.write_text(json.dumps(index))

    def replace_referrers(self, subject: str, attached: Artifact) -> None:
        """Make `attached` the only attestation listed for `subject`."""
        for data in attached.blobs.values():
            self.put_blob(data)
        self.put_manifest(attached.digest, attached.manifest)
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [attached.descriptor()]}
        self.put_manifest(referrers_tag(subject), manifest_bytes(index), INDEX)


REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture(params=["registry", "layout"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "layout":
        project = make_project(tmp_path / "project")
        generate_keys(project)
        yield Target(project, None)
        return
    with running_registry(tmp_path / "registry") as registry:
        project = make_project(
            tmp_path / "project", registry={"target": registry.target(), "insecure": True}
        )
        generate_keys(project)
        yield Target(project, registry)


def publish(target: Target, result: EvaluationResult) -> Published:
    return publish_result(target.project, result, ENVIRONMENT)


def verify(target: Target, reference: str, keys: list[Path] | None = None) -> Verification:
    verification = verify_result(target.project, reference, keys)
    assert not verification.verified
    assert verification.reason is not None
    return verification


def signed_statement(
    statement: dict[str, Any], subject: Published, signer: EnvelopeSigner
) -> Artifact:
    envelope = signer.sign(attestation.statement_bytes(statement), attestation.PAYLOAD_TYPE)
    subject_descriptor = {"mediaType": MANIFEST, "digest": subject.digest, "size": 0}
    return attestation_artifact(envelope, subject_descriptor, {CREATED: "2026-11-26T09:00:00Z"})


def project_signer(target: Target) -> EnvelopeSigner:
    key = target.project.root / ".evalhub" / "keys" / "evalhub.key"
    return EnvelopeSigner(key.read_bytes(), "the project's key")


def fix_subject_size(target: Target, artifact: Artifact, subject: Published) -> Artifact:
    """Rebuild `artifact` with the subject's real size (as an attacker would)."""
    value = json.loads(artifact.manifest)
    value["subject"] = descriptor(MANIFEST, target.get_manifest(subject.digest))
    return Artifact(manifest_bytes(value), artifact.blobs)


def test_the_untampered_result_verifies(target: Target) -> None:
    done = publish(target, sample_result())
    assert verify_result(target.project, done.reference).verified


def test_a_result_layer_replaced_in_storage(target: Target) -> None:
    result = sample_result()
    done = publish(target, result)
    manifest = json.loads(target.get_manifest(done.digest))
    layer = next(
        x
        for x in manifest["layers"]
        if x["annotations"]["org.opencontainers.image.title"] == "result.json"
    )
    original = target.get_blob(layer["digest"])
    assert result.verdict == "pass" and b'"verdict": "pass"' in original
    target.overwrite_blob(layer["digest"], original.replace(b'"pass"', b'"fail"'))

    reason = verify(target, done.reference).reason
    assert f"layer result.json does not match its digest {layer['digest']}" in (reason or "")
    assert "the blob was replaced" in (reason or "")


def test_a_result_layer_replaced_by_pushing_a_new_manifest(target: Target) -> None:
    """Blobs cannot change under their digest in a registry: an attacker pushes another
    result layer and manifest to the same tag; it carries no attestation of its own, and
    the old one names the old digest."""
    result = sample_result()
    done = publish(target, result)
    manifest = json.loads(target.get_manifest(done.digest))
    layer = manifest["layers"][0]
    forged_layer = target.get_blob(layer["digest"]).replace(b"0.9", b"1.0")
    layer["digest"], layer["size"] = target.put_blob(forged_layer), len(forged_layer)
    forged = manifest_bytes(manifest)
    target.put_manifest(result.tag, forged)

    reason = verify(target, done.reference).reason
    assert reason == f"no attestation is attached to {sha256(forged)}: the result is not signed"

    # ... and listing the genuine attestation for the forged manifest does not help.
    index = target.get_manifest(referrers_tag(done.digest))
    target.put_manifest(referrers_tag(sha256(forged)), index, INDEX)
    reason = verify(target, done.reference).reason
    assert f"is attached to {done.digest}, not to this result {sha256(forged)}" in (reason or "")


def test_a_tag_moved_to_another_result(target: Target) -> None:
    first, second = sample_result(), sample_result(min_score=0.5)
    assert first.fingerprint != second.fingerprint
    publish(target, first)
    other = publish(target, second)
    target.put_manifest(first.tag, target.get_manifest(other.digest))

    reason = verify(target, f"{target.project.config.registry.target}:{first.tag}").reason
    assert f"tag {first.tag} points at the result of assistant-quality" in (reason or "")
    assert f"whose tag is {second.tag}: the tag was moved" in (reason or "")
    assert verify_result(target.project, other.digest).verified  # the result itself is fine


def test_an_attestation_signed_by_an_untrusted_key(target: Target, tmp_path: Path) -> None:
    result = sample_result()
    done = publish(target, result)
    outsider_private, outsider_public = generate_key()
    outsider = EnvelopeSigner(outsider_private, "an outsider's key")
    forged = signed_statement(attestation.statement(result.record(), done.digest), done, outsider)
    target.replace_referrers(done.digest, fix_subject_size(target, forged, done))

    reason = verify(target, done.reference).reason or ""
    assert "is not signed by a trusted key" in reason
    assert f"signed by {outsider.key_id}" in reason

    # The genuine attestation, checked against a key the verifier was told to trust instead.
    genuine = publish(target, sample_result(min_score=0.5))
    other_key = tmp_path / "other.pub"
    other_key.write_bytes(outsider_public)
    reason = verify(target, genuine.reference, [other_key]).reason or ""
    assert f"is not signed by a trusted key: signed by {genuine.key_id}" in reason


def test_a_valid_attestation_of_another_result_copied_over(target: Target) -> None:
    result, other_result = sample_result(), sample_result(min_score=0.5)
    done = publish(target, result)
    other = publish(target, other_result)
    # The other result's genuine, correctly signed envelope, re-attached to this result.
    genuine = json.loads(target.get_manifest(other.attestation_digest))
    envelope = target.get_blob(genuine["layers"][0]["digest"])
    copied = attestation_artifact(
        envelope, descriptor(MANIFEST, target.get_manifest(done.digest)), genuine["annotations"]
    )
    target.replace_referrers(done.digest, copied)

    reason = verify(target, done.reference).reason or ""
    assert f"the attestation is about {other.digest}, not about this result {done.digest}" in reason


def test_attested_scores_that_differ_from_the_result(target: Target) -> None:
    result = sample_result()
    done = publish(target, result)
    statement = attestation.statement(result.record(), done.digest)
    statement["predicate"]["scores"]["faq"]["score"] = 0.95
    forged = signed_statement(statement, done, project_signer(target))  # even a trusted key
    target.replace_referrers(done.digest, fix_subject_size(target, forged, done))

    reason = verify(target, done.reference).reason or ""
    assert "the attested scores differ from the result: faq: attested 0.95, result 0.9" in reason


def test_a_missing_attestation(target: Target) -> None:
    done = publish(target, sample_result())
    target.drop_referrers(done.digest)

    verification = verify(target, done.reference)
    assert verification.reason == (
        f"no attestation is attached to {done.digest}: the result is not signed"
    )
    assert [c.name for c in verification.passed] == ["manifest", "layers", "result", "tag"]

    cli = run_cli("verify", done.reference, cwd=target.project.root)
    assert cli.code == 2  # verification failed (1 is for errors), as gate and audit say it
    assert cli.stdout.startswith("✗ not verified")
    assert "✗ no attestation is attached" in cli.stdout
    as_json = json.loads(
        run_cli("verify", done.reference, "--format", "json", cwd=target.project.root).stdout
    )
    assert as_json["verified"] is False and "no attestation" in as_json["reason"]


def test_a_wrong_digest_in_the_reference(target: Target) -> None:
    done = publish(target, sample_result())
    missing = "sha256:" + "0" * 64
    reason = verify(target, done.reference.rpartition(":")[0] + "@" + missing).reason
    assert reason == f"{target.project.config.registry.target} has no {missing}"


def test_no_trusted_keys_is_an_error_not_a_failed_verification(target: Target) -> None:
    """Nothing was verified: exit 1 with how to fix it (a failed verification is exit 2)."""
    done = publish(target, sample_result())
    (target.project.root / "evalhub.pub").unlink()
    with pytest.raises(ConfigError, match="no trusted public keys"):
        verify_result(target.project, done.reference)
    cli = run_cli("verify", done.reference, cwd=target.project.root)
    assert cli.code == 1 and "evalhub keys generate" in cli.stderr


def test_a_spec_layer_that_is_not_the_results_spec(target: Target) -> None:
    """Even signed by the trusted key: the spec layer must fingerprint to the result's."""
    result = sample_result()
    mixed = result.model_copy(update={"resolved": sample_result(min_score=0.5).resolved})
    done = publish(target, mixed)
    reason = verify(target, done.reference).reason or ""
    assert "the spec layer (assistant-quality, fingerprint" in reason
    assert (
        f"is not the spec of the result (assistant-quality, fingerprint {result.fingerprint[:16]}"
        in reason
    )
