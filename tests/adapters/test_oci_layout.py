"""The embedded default: results published into an OCI image layout under .evalhub/oci, with
no registry anywhere; the artifact's format; references."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.oci.artifact import DSSE_TYPE, referrer_descriptor
from evalhub.adapters.oci.attestations import check_attestation
from evalhub.adapters.oci.layout import OciLayout
from evalhub.adapters.oci.references import (
    Reference,
    Target,
    is_loopback,
    parse_reference,
    parse_target,
)
from evalhub.adapters.oci.registry import Credentials, OciRegistry
from evalhub.adapters.oci.store import copy, referrers
from evalhub.app import compose
from evalhub.app.keys import generate_keys, trusted_keys
from evalhub.app.project import Project
from evalhub.app.publish import publish_result
from evalhub.app.verify import verify_result
from evalhub.core import attestation
from evalhub.core.errors import ConfigError
from evalhub.core.project import ProjectConfig
from evalhub.core.result import EvaluationResult, ResultRecord, strip_credentials
from tests.conftest import run_cli
from tests.registry import ENVIRONMENT, make_project, sample_result

REF_NAME = "org.opencontainers.image.ref.name"


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_the_default_target_is_a_layout_under_the_state_dir() -> None:
    assert ProjectConfig().registry.target == "oci-layout:.evalhub/oci"


def test_a_result_is_published_into_a_valid_image_layout(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    key = generate_keys(project)
    result = sample_result()
    published = publish_result(project, result, ENVIRONMENT)

    layout = tmp_path / ".evalhub" / "oci"
    assert read_json(layout / "oci-layout") == {"imageLayoutVersion": "1.0.0"}
    index = read_json(layout / "index.json")
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    tags = {m["annotations"][REF_NAME]: m for m in index["manifests"]}
    tag = f"assistant-quality-{result.fingerprint[:16]}"
    assert published.reference == f"oci-layout:.evalhub/oci:{tag}"
    assert tags[tag]["digest"] == published.digest
    assert tags[tag]["artifactType"] == "application/vnd.evalhub.result.v1+json"
    assert published.key_id == key.key_id

    manifest = json.loads(blob(layout, published.digest))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == "application/vnd.evalhub.result.v1+json"
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert blob(layout, manifest["config"]["digest"]) == b"{}"
    layers = {
        layer["annotations"]["org.opencontainers.image.title"]: layer
        for layer in manifest["layers"]
    }
    assert {name: layer["mediaType"] for name, layer in layers.items()} == {
        "result.json": "application/vnd.evalhub.result.v1+json",
        "spec.json": "application/vnd.evalhub.spec.v1+json",
        "environment.json": "application/vnd.evalhub.environment.v1+json",
    }
    record = ResultRecord.model_validate_json(blob(layout, layers["result.json"]["digest"]))
    assert record == result.record()
    assert record.scores() == {"faq": 0.9, "tone": 0.7}
    assert json.loads(blob(layout, layers["spec.json"]["digest"]))["name"] == "assistant-quality"
    assert json.loads(blob(layout, layers["environment.json"]["digest"])) == ENVIRONMENT
    annotations = manifest["annotations"]
    assert annotations == {
        "org.opencontainers.image.created": "2026-11-26T08:00:00+00:00",
        "org.opencontainers.image.source": "https://git.example/team/specs.git",
        "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
        "org.opencontainers.image.title": "evalhub result of assistant-quality",
        "dev.evalhub.evaluation": "assistant-quality",
        "dev.evalhub.fingerprint": result.fingerprint,
        "dev.evalhub.model": "assistant",
        "dev.evalhub.collection": "quality@1",
        "dev.evalhub.verdict": result.verdict,
        "dev.evalhub.mlflow.run-id": "run-evaluation",
        "dev.evalhub.version": "0.1.0",
    }

    # The attestation hangs off the result through `subject` and the sha256-<hex> index.
    referrers = tags["sha256-" + published.digest.removeprefix("sha256:")]
    assert referrers["mediaType"] == "application/vnd.oci.image.index.v1+json"
    (entry,) = json.loads(blob(layout, referrers["digest"]))["manifests"]
    assert entry["digest"] == published.attestation_digest
    assert entry["artifactType"] == "application/vnd.dsse.envelope.v1+json"
    assert entry["annotations"]["dev.evalhub.key-id"] == key.key_id
    signed = json.loads(blob(layout, published.attestation_digest))
    assert signed["subject"] == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": published.digest,
        "size": len(blob(layout, published.digest)),
    }
    (envelope_layer,) = signed["layers"]
    envelope = json.loads(blob(layout, envelope_layer["digest"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert envelope["signatures"][0]["keyid"] == key.key_id
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://evalhub.dev/attestation/evaluation-result/v1"
    assert statement["subject"] == [
        {"name": tag, "digest": {"sha256": published.digest.removeprefix("sha256:")}}
    ]
    predicate = statement["predicate"]
    assert predicate["fingerprint"] == result.fingerprint
    assert predicate["specCommit"] == "0123456789abcdef0123456789abcdef01234567"
    assert predicate["scores"]["faq"]["score"] == 0.9
    assert predicate["scores"]["faq"]["threshold"] == 0.8  # locked before the run
    assert predicate["gates"] == {
        "min_score": 0.7,
        "max_regression": None,
        "collection_threshold": 0.6,
        "benchmarks": {"faq": 0.8},
    }
    assert predicate["mlflow"] == {
        "trackingUri": "http://127.0.0.1:5000",
        "runId": "run-evaluation",
    }
    assert predicate["model"]["identity"]["revision"] == "v1"


def test_a_layout_result_verifies_by_tag_digest_and_bare_name(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    generate_keys(project)
    result = sample_result()
    published = publish_result(project, result, ENVIRONMENT)

    for reference in (
        published.reference,
        f"oci-layout:.evalhub/oci@{published.digest}",
        published.pinned,
        result.tag,
        published.digest,
    ):
        verification = verify_result(project, reference)
        assert verification.verified, (reference, verification.reason)
        assert verification.digest == published.digest
        assert verification.attestation == published.attestation_digest

    cli = run_cli("verify", result.tag, cwd=tmp_path)
    assert cli.code == 0, cli.output
    assert cli.stdout.startswith("✓ verified: oci-layout:.evalhub/oci:")
    for check in ("manifest", "layers", "result", "tag", "attestation"):
        assert f"✓ {check}" in cli.stdout
    as_json = json.loads(run_cli("verify", result.tag, "--format", "json", cwd=tmp_path).stdout)
    assert as_json["verified"] is True and as_json["digest"] == published.digest
    assert as_json["scores"] == {"faq": 0.9, "tone": 0.7}
    assert as_json["key"]["name"] == "default"


def test_publishing_again_reuses_the_artifact_and_its_attestation(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    generate_keys(project)
    result = sample_result()
    first = publish_result(project, result, ENVIRONMENT)
    second = publish_result(project, result, ENVIRONMENT)
    assert second == first
    layout = OciLayout(tmp_path / ".evalhub" / "oci")
    referrers = layout.get_manifest("sha256-" + first.digest.removeprefix("sha256:"))
    assert referrers is not None and len(json.loads(referrers)["manifests"]) == 1


def test_a_new_result_of_the_same_fingerprint_takes_over_the_tag(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    generate_keys(project)
    old = publish_result(project, sample_result(created="2026-11-26T08:00:00+00:00"), ENVIRONMENT)
    new = publish_result(project, sample_result(created="2026-11-27T08:00:00+00:00"), ENVIRONMENT)
    assert new.reference == old.reference and new.digest != old.digest
    layout = OciLayout(tmp_path / ".evalhub" / "oci")
    assert layout.resolve(sample_result().tag) == new.digest
    assert layout.tags().count(sample_result().tag) == 1
    assert verify_result(project, old.digest).verified  # still there, by digest
    assert verify_result(project, sample_result().tag).digest == new.digest


def test_the_result_needs_no_registry_and_no_network(tmp_path: Path) -> None:
    """Embedded defaults only: no evalhub.yaml settings, a layout and a key on disk."""
    project = make_project(tmp_path)
    generate_keys(project)
    published = publish_result(project, sample_result(), ENVIRONMENT)
    assert published.reference.startswith("oci-layout:")


def test_credentials_never_reach_the_artifact() -> None:
    assert strip_credentials("https://user:secret@host:5000/x?y=1") == "https://host:5000/x?y=1"
    assert strip_credentials("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"
    result = sample_result()
    dumped = result.model_dump_json()
    assert "token:secret@" not in dumped and "user:pw@" not in dumped
    assert result.source == "https://git.example/team/specs.git"


def test_the_predicate_restates_the_result_record() -> None:
    record = sample_result().record()
    digest = "sha256:" + "c" * 64
    payload = attestation.statement_bytes(attestation.statement(record, digest))
    assert attestation.check_statement(payload, digest, record) == []
    other = "sha256:" + "d" * 64
    (problem,) = attestation.check_statement(payload, other, record)
    assert "not about this result" in problem


def test_results_are_versioned_and_round_trip() -> None:
    result = sample_result()
    again = EvaluationResult.model_validate_json(result.model_dump_json())
    assert again == result and again.result_version == 1
    with pytest.raises(ValueError, match="Invalid isoformat"):
        sample_result(created="yesterday")


# -- references ------------------------------------------------------------------------------

LAYOUT = Target("layout", ".evalhub/oci")
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "oci://127.0.0.1:5000/evalhub/results:q-0123",
            Reference(Target("registry", "127.0.0.1:5000/evalhub/results"), "q-0123"),
        ),
        (
            f"oci://registry.example/results@{DIGEST}",
            Reference(Target("registry", "registry.example/results"), None, DIGEST),
        ),
        (
            f"oci://[::1]:5000/r:t@{DIGEST}",
            Reference(Target("registry", "[::1]:5000/r"), "t", DIGEST),
        ),
        ("oci-layout:.evalhub/oci:q-0123", Reference(LAYOUT, "q-0123")),
        (f"oci-layout:/abs/dir@{DIGEST}", Reference(Target("layout", "/abs/dir"), None, DIGEST)),
        ("q-0123", Reference(LAYOUT, "q-0123")),
        (DIGEST, Reference(LAYOUT, None, DIGEST)),
    ],
)
def test_references(text: str, expected: Reference) -> None:
    parsed = parse_reference(text, LAYOUT)
    assert parsed == expected
    if "://" in text or text.startswith("oci-layout:"):
        assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("oci://127.0.0.1:5000", "is not a repository name"),
        ("oci://host/Upper:tag", "is not a repository name"),
        ("oci://host/repo@sha256:short", "is not a sha256 digest"),
        ("oci://host/repo:bad!tag", "is not a valid tag"),
        ("oci://host/repo", "names no result"),
        ("https://host/repo:tag", "is not an OCI target"),
        ("oci-layout:", "names no directory"),
    ],
)
def test_bad_references_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_reference(text, LAYOUT)
    assert caught.value.hint


def test_targets() -> None:
    assert parse_target("oci://localhost:5000/a/b/") == Target("registry", "localhost:5000/a/b")
    assert parse_target("oci-layout:out") == Target("layout", "out")


def test_plain_http_is_refused_for_a_remote_registry() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:80")
    assert is_loopback("127.8.9.10") and not is_loopback("10.0.0.1:5000")
    assert not is_loopback("registry.example:5000") and not is_loopback("localhost.example")
    with pytest.raises(ConfigError, match=r"refusing plain HTTP to registry\.example"):
        OciRegistry(parse_target("oci://registry.example/r"), Credentials(), insecure=True)
    OciRegistry(parse_target("oci://127.0.0.1:5000/r"), Credentials(), insecure=True)


# -- a store with the referrers API ------------------------------------------------------------


class MemoryRegistry:
    """An in-memory OciStore that indexes subjects itself, like a registry with the OCI 1.1
    referrers API (docker-registry 2.8 has none, so the real one cannot show this branch)."""

    display = "memory"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tagged: dict[str, str] = {}

    def has_blob(self, digest: str) -> bool:
        return digest in self.blobs

    def put_blob(self, digest: str, data: bytes) -> None:
        self.blobs[digest] = data

    def get_blob(self, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> bool:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.manifests[digest] = data
        if not reference.startswith("sha256:"):
            self.tagged[reference] = digest
        return "subject" in json.loads(data)

    def get_manifest(self, reference: str) -> bytes | None:
        digest = reference if reference.startswith("sha256:") else self.tagged.get(reference)
        return self.manifests.get(digest or "")

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        return [
            referrer_descriptor(m)
            for m in self.manifests.values()
            if json.loads(m).get("subject", {}).get("digest") == digest
        ]

    def tags(self) -> list[str]:
        return list(self.tagged)


def test_a_store_with_the_referrers_api_needs_no_fallback_tag(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    generate_keys(project)
    result = sample_result()
    published = publish_result(project, result, ENVIRONMENT)
    layout = OciLayout(tmp_path / ".evalhub" / "oci")

    memory = MemoryRegistry()
    copied = copy(layout, memory, result.tag)
    assert copied.digest == published.digest
    assert copied.referrers == (published.attestation_digest,)
    assert list(memory.tagged) == [result.tag]  # no sha256-<hex> index was written
    (entry,) = referrers(memory, published.digest, DSSE_TYPE)
    assert entry["digest"] == published.attestation_digest
    key = check_attestation(memory, entry, published.digest, result.record(), trusted_keys(project))
    assert key.key_id == published.key_id


# -- issue 12 item 11: index.json is derived from the blobs ------------------------------------


def _published_pair(project: Project) -> tuple[Any, Any]:
    generate_keys(project)
    first = publish_result(project, sample_result("first"), ENVIRONMENT)
    second = publish_result(project, sample_result("second"), ENVIRONMENT)
    return first, second


def test_with_index_json_deleted_verify_still_finds_the_signed_results(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    first, second = _published_pair(project)
    (tmp_path / ".evalhub" / "oci" / "index.json").unlink()
    for published in (first, second):
        for reference in (published.reference, published.digest):
            verification = verify_result(project, reference)
            assert verification.verified, (reference, verification.reason)
            assert verification.attestation == published.attestation_digest
    assert not (tmp_path / ".evalhub" / "oci" / "index.json").exists()  # verify reads only


def test_the_next_publish_rebuilds_the_index_with_every_result_not_only_new_ones(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    first, second = _published_pair(project)
    layout = tmp_path / ".evalhub" / "oci"
    before = read_json(layout / "index.json")
    (layout / "index.json").unlink()
    third = publish_result(project, sample_result("third"), ENVIRONMENT)
    tags = {
        m["annotations"][REF_NAME]: m["digest"]
        for m in read_json(layout / "index.json")["manifests"]
    }
    for published in (first, second, third):
        tag = published.reference.rpartition(":")[2]
        assert tags[tag] == published.digest
        assert tags["sha256-" + published.digest.removeprefix("sha256:")]
        assert verify_result(project, published.reference).verified
    assert len(tags) == len(before["manifests"]) + 2  # the third result and its referrers


def test_an_index_json_that_lacks_entries_is_recovered_from_the_blobs(tmp_path: Path) -> None:
    """The index a publish wrote after index.json was lost (today's bug) names only the new
    result: the plan's check of the target (Publisher.missing) restores the rest."""
    project = make_project(tmp_path)
    first, second = _published_pair(project)
    layout = tmp_path / ".evalhub" / "oci"
    index = read_json(layout / "index.json")
    kept = second.digest.removeprefix("sha256:")  # the result's tag and its referrers tag
    index["manifests"] = [m for m in index["manifests"] if kept in json.dumps(m)]
    (layout / "index.json").write_text(json.dumps(index))
    assert not verify_result(project, first.reference).verified

    publisher = compose.publisher(project)
    assert publisher.missing({first.digest, second.digest, "sha256:" + "0" * 64}) == {
        "sha256:" + "0" * 64
    }
    for published in (first, second):
        verification = verify_result(project, published.reference)
        assert verification.verified, verification.reason
        assert verification.attestation == published.attestation_digest
    assert sorted(publisher.result_tags()) == sorted(
        p.reference.rpartition(":")[2] for p in (first, second)
    )
