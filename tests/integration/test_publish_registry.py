"""Publishing to a real OCI registry (Debian's docker-registry 2.8, started per test): the
artifact and its attestation arrive, oras pulls them, securesystemslib alone verifies the
envelope, credentials work and fail clearly, a dead registry fails fast, and `publish --to`
copies a layout's results with every digest unchanged."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.oci.publisher import open_store
from evalhub.adapters.oci.references import parse_target
from evalhub.app import compose
from evalhub.app.keys import generate_keys
from evalhub.app.project import Project
from evalhub.app.publish import Published, publish_result
from evalhub.app.verify import verify_result
from evalhub.core.errors import PublishError
from tests.conftest import run_cli
from tests.registry import (
    ENVIRONMENT,
    INDEX,
    REPOSITORY,
    Registry,
    free_port,
    make_project,
    running_registry,
    sample_result,
    sha256,
)

pytestmark = pytest.mark.integration
USER, PASSWORD = "evalhub", "s3cret-pass"
GUARD = 60  # seconds; oras-py's own retries would take over two minutes


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "auth-registry", auth=(USER, PASSWORD)) as running:
        yield running


def registry_project(root: Path, registry: Registry, **settings: Any) -> Project:
    project = make_project(
        root, registry={"target": registry.target(), "insecure": True, **settings}
    )
    generate_keys(project)
    return project


@pytest.fixture
def published(tmp_path: Path, registry: Registry) -> dict[str, Any]:
    """A result published by evalhub, described by plain values only."""
    project = registry_project(tmp_path / "project", registry)
    done = publish_result(project, sample_result(), ENVIRONMENT)
    return {
        "registry": f"http://{registry.host}",
        "repository": REPOSITORY,
        "digest": done.digest,
        "attestation": done.attestation_digest,
        "public_key": tmp_path / "project" / "evalhub.pub",
    }


def test_publish_pushes_the_result_and_its_attestation(tmp_path: Path, registry: Registry) -> None:
    project = registry_project(tmp_path / "project", registry)
    result = sample_result()
    done = publish_result(project, result, ENVIRONMENT)
    assert done.reference == f"{registry.target()}:{result.tag}"

    manifest = registry.get_manifest(result.tag)
    assert manifest is not None and sha256(manifest) == done.digest
    value = json.loads(manifest)
    assert value["artifactType"] == "application/vnd.evalhub.result.v1+json"
    assert value["annotations"]["dev.evalhub.fingerprint"] == result.fingerprint

    # docker-registry 2.8 has no referrers API: the attestation is listed in the fallback.
    with registry.client() as http:
        assert http.get(f"{REPOSITORY}/referrers/{done.digest}").status_code == 404
    index = registry.get_manifest("sha256-" + done.digest.removeprefix("sha256:"))
    assert index is not None
    (entry,) = json.loads(index)["manifests"]
    assert entry["digest"] == done.attestation_digest
    assert entry["artifactType"] == "application/vnd.dsse.envelope.v1+json"
    attestation = registry.get_manifest(done.attestation_digest)
    assert attestation is not None
    assert json.loads(attestation)["subject"]["digest"] == done.digest

    verification = verify_result(project, done.reference)
    assert verification.verified, verification.reason


def test_oras_pulls_the_result(tmp_path: Path, registry: Registry) -> None:
    import oras.client

    project = registry_project(tmp_path / "project", registry)
    result = sample_result()
    publish_result(project, result, ENVIRONMENT)

    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    out = tmp_path / "pulled"
    files = client.pull(target=f"{registry.host}/{REPOSITORY}:{result.tag}", outdir=str(out))
    assert sorted(Path(f).name for f in files) == ["environment.json", "result.json", "spec.json"]
    assert json.loads((out / "result.json").read_text()) == result.record().model_dump(mode="json")
    assert json.loads((out / "environment.json").read_text()) == ENVIRONMENT


def test_attestation_verifies_with_securesystemslib_alone(published: dict[str, Any]) -> None:
    """An outsider's check: plain HTTP, cryptography and securesystemslib, no evalhub."""
    import hashlib

    import httpx
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    base = f"{published['registry']}/v2/{published['repository']}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    with httpx.Client(timeout=10) as http:
        manifest = http.get(f"{base}/manifests/{published['attestation']}", headers=accept)
        (layer,) = manifest.json()["layers"]
        envelope_bytes = http.get(f"{base}/blobs/{layer['digest']}").content
    assert "sha256:" + hashlib.sha256(envelope_bytes).hexdigest() == layer["digest"]

    pem = published["public_key"].read_bytes()
    public = serialization.load_pem_public_key(pem)
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = SSlibKey.from_crypto(public, keyid="sha256:" + hashlib.sha256(der).hexdigest())
    envelope = Envelope.from_dict(json.loads(envelope_bytes))
    accepted = envelope.verify([key], 1)
    assert list(accepted) == [key.keyid]
    assert envelope.payload_type == "application/vnd.in-toto+json"
    statement = json.loads(envelope.payload)
    assert statement["subject"][0]["digest"]["sha256"] == published["digest"].removeprefix(
        "sha256:"
    )
    assert statement["predicate"]["scores"]["faq"]["score"] == 0.9

    forged = json.loads(envelope_bytes)
    forged["payload"] = base64.b64encode(envelope.payload.replace(b"0.9", b"1.0")).decode()
    with pytest.raises(Exception, match="Accepted signatures do not match threshold"):
        Envelope.from_dict(forged).verify([key], 1)


def test_verify_from_the_command_line(tmp_path: Path, registry: Registry) -> None:
    project = registry_project(tmp_path / "project", registry)
    result = sample_result()
    done = publish_result(project, result, ENVIRONMENT)
    for reference in (done.reference, f"{registry.target()}@{done.digest}", result.tag):
        cli = run_cli("verify", reference, cwd=project.root)
        assert cli.code == 0, (reference, cli.output)
        assert "✓ verified" in cli.stdout and "✓ attestation" in cli.stdout
    as_json = json.loads(
        run_cli("verify", done.pinned, "--format", "json", cwd=project.root).stdout
    )
    assert as_json["verified"] is True
    assert as_json["digest"] == done.digest and as_json["attestation"] == done.attestation_digest


def test_basic_auth_from_environment_variables(
    tmp_path: Path, auth_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oras.client

    monkeypatch.setenv("REGISTRY_USER", USER)
    monkeypatch.setenv("REGISTRY_PASSWORD", PASSWORD)
    project = registry_project(
        tmp_path / "project",
        auth_registry,
        username_env="REGISTRY_USER",
        password_env="REGISTRY_PASSWORD",
    )
    result = sample_result()
    done = publish_result(project, result, ENVIRONMENT)
    assert verify_result(project, done.reference).verified

    client = oras.client.OrasClient(
        hostname=auth_registry.host, insecure=True, auth_backend="basic"
    )
    client.auth.set_basic_auth(USER, PASSWORD)
    files = client.pull(
        target=f"{auth_registry.host}/{REPOSITORY}:{result.tag}", outdir=str(tmp_path / "out")
    )
    assert len(files) == 3


def test_credentials_from_a_docker_config_file(tmp_path: Path, auth_registry: Registry) -> None:
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    project = registry_project(tmp_path / "project", auth_registry, docker_config=str(config))
    done = publish_result(project, sample_result(), ENVIRONMENT)
    assert verify_result(project, done.reference).verified


def test_a_wrong_password_fails_in_seconds_with_a_clear_error(
    tmp_path: Path, auth_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_USER", USER)
    monkeypatch.setenv("REGISTRY_PASSWORD", "wrong")
    project = registry_project(
        tmp_path / "project",
        auth_registry,
        username_env="REGISTRY_USER",
        password_env="REGISTRY_PASSWORD",
    )
    started = time.monotonic()
    with pytest.raises(PublishError) as caught:
        publish_result(project, sample_result(), ENVIRONMENT)
    assert time.monotonic() - started < GUARD
    assert "refused the credentials (HTTP 401)" in caught.value.message
    assert "$REGISTRY_USER and $REGISTRY_PASSWORD" in caught.value.hint
    assert "wrong" not in caught.value.message + caught.value.hint


def test_no_credentials_for_a_registry_that_needs_them(
    tmp_path: Path, auth_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = registry_project(tmp_path / "project", auth_registry)
    with pytest.raises(PublishError, match="requires credentials and none were given"):
        publish_result(project, sample_result(), ENVIRONMENT)


def test_a_dead_registry_fails_in_seconds(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, registry={"target": f"oci://127.0.0.1:{free_port()}/r", "insecure": True}
    )
    generate_keys(project)
    started = time.monotonic()
    with pytest.raises(PublishError) as caught:
        publish_result(project, sample_result(), ENVIRONMENT)
    assert time.monotonic() - started < GUARD
    assert "cannot reach oci://127.0.0.1:" in caught.value.message
    assert "connection refused" in caught.value.message
    assert "registry is running" in caught.value.hint


def test_a_registry_that_stops_mid_way_is_a_publish_error(
    tmp_path: Path, registry: Registry
) -> None:
    project = registry_project(tmp_path / "project", registry)
    publish_result(project, sample_result(), ENVIRONMENT)
    registry.stop()
    started = time.monotonic()
    with pytest.raises(PublishError, match="cannot reach"):
        publish_result(project, sample_result("second"), ENVIRONMENT)
    assert time.monotonic() - started < GUARD


def test_tls_is_the_default(tmp_path: Path, registry: Registry) -> None:
    project = make_project(tmp_path, registry={"target": registry.target()})
    generate_keys(project)
    with pytest.raises(PublishError, match=r"TLS with oci://127\.0\.0\.1") as caught:
        publish_result(project, sample_result(), ENVIRONMENT)
    assert "insecure: true" in caught.value.hint


def test_plain_http_to_a_remote_registry_is_refused(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, registry={"target": "oci://registry.example/r", "insecure": True}
    )
    generate_keys(project)
    with pytest.raises(PublishError, match=r"refusing plain HTTP to registry\.example"):
        publish_result(project, sample_result(), ENVIRONMENT)


def test_publish_to_copies_layout_results_with_identical_digests(
    tmp_path: Path, registry: Registry
) -> None:
    project = make_project(tmp_path)  # embedded default: the layout
    generate_keys(project)
    results = [sample_result(), sample_result("second", min_score=0.5)]
    local: list[Published] = [publish_result(project, r, ENVIRONMENT) for r in results]
    assert all(p.reference.startswith("oci-layout:") for p in local)

    cli = run_cli("publish", "--to", registry.target(), "--insecure", cwd=tmp_path)
    assert cli.code == 0, cli.output
    assert "2 result(s) copied" in cli.stdout
    for result, before in zip(results, local, strict=True):
        manifest = registry.get_manifest(result.tag)
        assert manifest is not None
        layout_blob = tmp_path / ".evalhub/oci/blobs/sha256" / before.digest.removeprefix("sha256:")
        assert manifest == layout_blob.read_bytes()
        assert sha256(manifest) == before.digest
        index = registry.get_manifest("sha256-" + before.digest.removeprefix("sha256:"))
        assert index is not None
        assert [m["digest"] for m in json.loads(index)["manifests"]] == [before.attestation_digest]
        attestation = registry.get_manifest(before.attestation_digest)
        assert attestation is not None and sha256(attestation) == before.attestation_digest
        remote = f"{registry.target()}:{result.tag}"
        verified = run_cli("verify", remote, "--insecure", cwd=tmp_path)
        assert verified.code == 0, verified.output

    again = run_cli(
        "publish", "--to", registry.target(), "--insecure", "--format", "json", cwd=tmp_path
    )
    assert again.code == 0, again.output
    rows = json.loads(again.stdout)["results"]
    assert {(r["tag"], r["digest"]) for r in rows} == {
        (r.tag, p.digest) for r, p in zip(results, local, strict=True)
    }
    index = registry.get_manifest("sha256-" + local[0].digest.removeprefix("sha256:"))
    assert index is not None and len(json.loads(index)["manifests"]) == 1  # not listed twice
    assert json.loads(index)["mediaType"] == INDEX


def test_publish_to_with_nothing_published_says_so(tmp_path: Path, registry: Registry) -> None:
    make_project(tmp_path)
    cli = run_cli("publish", "--to", registry.target(), "--insecure", cwd=tmp_path)
    assert cli.code == 1
    assert "holds no results to publish" in cli.stderr and "evalhub apply" in cli.stderr


@contextlib.contextmanager
def bearer_stub(token: str) -> Iterator[tuple[str, list[str | None]]]:
    """A stand-in registry that wants `Authorization: Bearer <token>` (docker-registry needs a
    separate token server for bearer auth): every blob exists for the right token."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.path != "/v2/" and self.headers.get("Authorization") == f"Bearer {token}":
                self.send_response(200)
            else:
                self.send_response(401)
                self.send_header("Www-Authenticate", 'Bearer realm="http://127.0.0.1/token"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_bearer_token_from_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = "sha256:" + "0" * 64
    with bearer_stub("tok-123") as (host, seen):
        project = make_project(
            tmp_path,
            registry={"target": f"oci://{host}/r", "insecure": True, "token_env": "REG_TOKEN"},
        )
        monkeypatch.setenv("REG_TOKEN", "tok-123")
        store = open_store(parse_target(f"oci://{host}/r"), project.config.registry, project.root)
        assert store.has_blob(digest)
        assert seen[-1] == "Bearer tok-123"

        monkeypatch.setenv("REG_TOKEN", "expired")
        started = time.monotonic()
        with pytest.raises(PublishError, match=r"refused the credentials \(HTTP 401\)") as caught:
            open_store(
                parse_target(f"oci://{host}/r"), project.config.registry, project.root
            ).has_blob(digest)
        assert time.monotonic() - started < GUARD
        assert "$REG_TOKEN" in caught.value.hint and "expired" not in caught.value.message


def test_the_plan_sees_results_missing_from_the_registry(
    tmp_path: Path, registry: Registry
) -> None:
    """Publisher.missing (what the plan asks, issue 12 item 11): one HEAD per recorded result."""
    project = registry_project(tmp_path / "project", registry)
    kept = publish_result(project, sample_result("kept"), ENVIRONMENT)
    lost = publish_result(project, sample_result("lost"), ENVIRONMENT)
    publisher = compose.publisher(project)
    assert publisher.missing({kept.digest, lost.digest}) == set()
    registry.delete_manifest(lost.digest)
    assert publisher.missing({kept.digest, lost.digest}) == {lost.digest}
