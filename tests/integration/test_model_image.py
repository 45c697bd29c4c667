"""Evidence attached to the model itself (issue 19), against a real registry (Debian's
docker-registry 2.8, which has no referrers API: the sha256-<hex> tag fallback is used).

A small ModelCar-shaped image (a model file in a layer under /models) is pushed; a Model names
it by digest; `evalhub apply` publishes, and the result and its attestation hang off the image.
`verify --model-image` and `gate --model-image` pass; each tamper fails with its reason.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project
from tests.registry import INDEX, MANIFEST, Registry, running_registry, sha256

pytestmark = pytest.mark.integration

MODELS = "models/smol"
RESULT_TYPE = "application/vnd.evalhub.result.v1+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
POLICY = """---
apiVersion: evalhub.dev/v1
kind: Policy
metadata: {name: ship}
spec: {model: assistant, require: [quality], signed_by: [ci]}
"""


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", "sk-evalhub-test-" + "m" * 24)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "registry") as running:
        yield running


def push_modelcar(registry: Registry, weights: bytes, tag: str) -> str:
    """A ModelCar-shaped image: one uncompressed tar layer holding models/model.gguf."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("models/model.gguf")
        info.size, info.mtime = len(weights), 0
        tar.addfile(info, io.BytesIO(weights))
    layer_bytes = layer.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer_bytes)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": registry.put_blob(config, MODELS),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": registry.put_blob(layer_bytes, MODELS),
                    "size": len(layer_bytes),
                }
            ],
        }
    ).encode()
    return registry.put_manifest(tag, manifest, MANIFEST, MODELS)


def referrers(registry: Registry, digest: str) -> list[dict[str, Any]]:
    index = registry.get_manifest("sha256-" + digest.removeprefix("sha256:"), MODELS)
    return [] if index is None else list(json.loads(index)["manifests"])


def set_referrers(registry: Registry, digest: str, entries: list[dict[str, Any]]) -> None:
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    registry.put_manifest("sha256-" + digest.removeprefix("sha256:"), index, INDEX, MODELS)


def repoint(registry: Registry, digest: str, image: str, image_manifest: bytes) -> str:
    """Push a copy of the manifest `digest` whose `subject` is `image`; its new digest."""
    data = registry.get_manifest(digest, MODELS)
    assert data is not None
    value = json.loads(data)
    value["subject"] = {"mediaType": MANIFEST, "digest": image, "size": len(image_manifest)}
    copy = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return registry.put_manifest(sha256(copy), copy, MANIFEST, MODELS)


def entry_of(registry: Registry, digest: str) -> dict[str, Any]:
    data = registry.get_manifest(digest, MODELS)
    assert data is not None
    value = json.loads(data)
    return {
        "mediaType": MANIFEST,
        "digest": digest,
        "size": len(data),
        "artifactType": value["artifactType"],
        "annotations": value.get("annotations", {}),
    }


def set_image(root: Path, image: str, revision: str = "v1") -> None:
    models = root / "evals" / "models.yaml"
    text = re.sub(r"\n  (revision|image): .*", "", models.read_text())
    models.write_text(text + f"  revision: {revision}\n  image: {image}\n")


def cli(root: Path, *args: str) -> Result:
    result = run_cli(*args, cwd=root, timeout=300)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def project(tmp_path: Path, registry: Registry, url: str) -> Path:
    root = make_project(tmp_path / "project", url)
    (root / "evalhub.yaml").write_text(
        "specs: [evals]\nexecutors: {concurrency: 2}\n"
        f"registry: {{target: 'oci://{registry.host}/evalhub/results', insecure: true}}\n"
        "signing: {trusted_keys: [{name: ci, path: evalhub.pub}]}\n"
    )
    with (root / "evals" / "evaluations.yaml").open("a") as out:
        out.write(POLICY)
    assert cli(root, "keys", "generate").code == 0
    return root


def test_results_hang_off_the_model_image_and_gate_by_its_digest(
    tmp_path: Path, registry: Registry
) -> None:
    image = push_modelcar(registry, b"GGUF tiny smol weights v1", "v1")
    other = push_modelcar(registry, b"GGUF tiny smol weights v2", "v2")
    name = f"{registry.host}/{MODELS}"
    with fake_openai(Script(answer=answer)) as (url, script):
        root = project(tmp_path, registry, url)
        set_image(root, f"{name}:v1@{image}")
        assert cli(root, "validate").code == 0
        applied = cli(root, "apply", "--yes")
        assert applied.code == 0, applied.stdout + applied.stderr
        calls = script.generations

        # The image's referrers: the result and an attestation, annotated.
        entries = referrers(registry, image)
        by_type = {e["artifactType"]: e for e in entries}
        assert sorted(by_type) == [DSSE_TYPE, RESULT_TYPE]
        for entry in entries:
            assert entry["annotations"]["dev.evalhub.evaluation"] == "quality"
            assert entry["annotations"]["dev.evalhub.verdict"] == "pass"
            assert len(entry["annotations"]["dev.evalhub.fingerprint"]) == 64
        result = json.loads(registry.get_manifest(by_type[RESULT_TYPE]["digest"], MODELS) or b"")
        assert result["subject"]["digest"] == image
        # The same result manifest is the one in the results repository (one digest).
        ledger = json.loads((root / "results" / "quality.json").read_text())
        assert ledger["publication"]["result"].endswith("@" + by_type[RESULT_TYPE]["digest"])

        verified = cli(root, "verify", "--model-image", f"{name}@{image}")
        assert verified.code == 0, verified.stdout + verified.stderr
        assert "1 of 1 attached result(s) verified" in verified.stdout
        as_json = json.loads(
            cli(root, "verify", "--model-image", f"{name}@{image}", "--format", "json").stdout
        )
        assert as_json["verified"] and as_json["results"][0]["evaluation"] == "quality"
        gated = cli(root, "gate", "--model-image", f"{name}@{image}")
        assert gated.code == 0, gated.stdout + gated.stderr
        # Nothing is attached to the other image: its gate fails, naming why.
        gated = cli(root, "gate", "--model-image", f"{name}@{other}", "--policy", "ship")
        assert gated.code == 2 and "no evalhub result is attached to" in gated.stdout

        # Identity: the revision label does not re-plan; the image digest does, exactly the
        # Model's units.
        set_image(root, f"{name}:v1@{image}", revision="v1-renamed")
        assert cli(root, "plan", "--detailed-exitcode").code == 0
        set_image(root, f"{name}@{other}")
        plan = json.loads(cli(root, "plan", "--format", "json").stdout)
        (evaluation,) = plan["actions"]
        assert evaluation["action"] == "run"
        assert sorted(u["key"] for u in evaluation["units"]) == ["refusals", "returns-qa"]
        for unit in evaluation["units"]:
            (reason,) = unit["reasons"]
            assert reason.startswith(f'model.image: "{image[:20]}') and other[:20] in reason
        # Publish a result for the second image too (the tampers below borrow it).
        assert cli(root, "apply", "--yes").code == 0
        assert script.generations > calls
        set_image(root, f"{name}:v1@{image}")

    image_manifest = registry.get_manifest(image, MODELS) or b""
    mine = {e["artifactType"]: e for e in referrers(registry, image)}
    theirs = {e["artifactType"]: e for e in referrers(registry, other)}

    def verify(reference: str) -> str:
        checked = cli(root, "verify", "--model-image", reference)
        assert checked.code == 2, checked.stdout  # not verified (1 is for errors), as gate says
        gated = cli(root, "gate", "--model-image", reference, "--policy", "ship")
        assert gated.code == 2, gated.stdout + gated.stderr
        return checked.stdout

    # 1. The other image's attestation, re-pointed at this image, replaces this one's.
    borrowed = repoint(registry, theirs[DSSE_TYPE]["digest"], image, image_manifest)
    set_referrers(registry, image, [mine[RESULT_TYPE], entry_of(registry, borrowed)])
    output = verify(f"{name}@{image}")
    assert "not about this result" in output and "an attestation of another result" in output

    # 2. The other image's result re-pointed to this image (with the right attestation kept).
    moved = repoint(registry, theirs[RESULT_TYPE]["digest"], image, image_manifest)
    set_referrers(registry, image, [entry_of(registry, moved), mine[DSSE_TYPE]])
    output = verify(f"{name}@{image}")
    assert f"the result judged the image {other}, not {image}" in output

    # Restored, it verifies again: the failures above were the tampers'.
    set_referrers(registry, image, [mine[RESULT_TYPE], mine[DSSE_TYPE]])
    assert cli(root, "verify", "--model-image", f"{name}:v1@{image}").code == 0

    # 3. The image re-tagged: v1 now names other bytes.
    registry.put_manifest("v1", registry.get_manifest(other, MODELS) or b"", MANIFEST, MODELS)
    output = verify(f"{name}:v1@{image}")
    assert f"the tag v1 now names {other}, not {image}" in output


def test_the_attestation_names_both_digests_and_verifies_with_securesystemslib_alone(
    tmp_path: Path, registry: Registry
) -> None:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    image = push_modelcar(registry, b"GGUF tiny smol weights", "v1")
    with fake_openai(Script(answer=answer)) as (url, _):
        root = project(tmp_path, registry, url)
        set_image(root, f"{registry.host}/{MODELS}@{image}")
        assert cli(root, "apply", "--yes").code == 0
    by_type = {e["artifactType"]: e for e in referrers(registry, image)}
    attestation = json.loads(registry.get_manifest(by_type[DSSE_TYPE]["digest"], MODELS) or b"")
    assert attestation["subject"]["digest"] == image
    (layer,) = attestation["layers"]
    envelope = Envelope.from_dict(json.loads(registry.get_blob(layer["digest"], MODELS)))
    public = serialization.load_pem_public_key((root / "evalhub.pub").read_bytes())
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = SSlibKey.from_crypto(public, keyid=sha256(der))
    assert list(envelope.verify([key], 1)) == [key.keyid]
    statement = json.loads(envelope.payload)
    digests = {s["digest"]["sha256"] for s in statement["subject"]}
    assert digests == {
        by_type[RESULT_TYPE]["digest"].removeprefix("sha256:"),
        image.removeprefix("sha256:"),
    }
    assert statement["predicate"]["model"]["identity"]["image"] == image


def test_a_missing_image_fails_publishing_clearly_and_the_result_stays_recorded(
    tmp_path: Path, registry: Registry
) -> None:
    absent = "sha256:" + "e" * 64
    with fake_openai(Script(answer=answer)) as (url, _):
        root = project(tmp_path, registry, url)
        set_image(root, f"{registry.host}/{MODELS}@{absent}")
        applied = cli(root, "apply", "--yes")
    output = applied.stdout + applied.stderr
    assert f"the model image {registry.host}/{MODELS}@{absent} is not in its registry" in output
    assert cli(root, "plan", "--detailed-exitcode").code == 2  # published by the next apply
