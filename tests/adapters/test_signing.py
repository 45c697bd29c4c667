"""Keys and envelopes: `evalhub keys`, key ids, where the private key comes from, DSSE."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from evalhub.adapters.signing import EnvelopeSigner, generate_key, load_public_key, open_envelope
from evalhub.app.keys import generate_keys, list_keys, load_signer, trusted_keys
from evalhub.core.errors import ConfigError, PublishError
from tests.conftest import run_cli
from tests.registry import make_project


def der_key_id(public_pem: bytes) -> str:
    """The documented key id, computed without evalhub: sha256 of the DER SPKI."""
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def test_keys_generate_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    make_project(tmp_path)
    result = run_cli("keys", "generate", cwd=tmp_path)
    assert result.code == 0, result.output
    private = tmp_path / ".evalhub" / "keys" / "evalhub.key"
    public = tmp_path / "evalhub.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    key_id = der_key_id(public.read_bytes())
    assert f"key id       {key_id}" in result.stdout
    assert "trusted_keys" in result.stderr  # tells how to trust it
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey) and loaded.curve.name == "secp256r1"


def test_keys_generate_never_replaces_a_key_without_force(tmp_path: Path) -> None:
    make_project(tmp_path)
    assert run_cli("keys", "generate", cwd=tmp_path).code == 0
    private = tmp_path / ".evalhub" / "keys" / "evalhub.key"
    before = private.read_bytes(), (tmp_path / "evalhub.pub").read_bytes()

    again = run_cli("keys", "generate", cwd=tmp_path)
    assert again.code == 1
    assert "already exists; not replacing a signing key" in again.stderr
    assert "--force" in again.stderr
    assert (private.read_bytes(), (tmp_path / "evalhub.pub").read_bytes()) == before

    forced = run_cli("keys", "generate", "--force", cwd=tmp_path)
    assert forced.code == 0, forced.output
    assert private.read_bytes() != before[0]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_a_public_key_alone_is_refused_too(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (tmp_path / "evalhub.pub").write_text("someone's committed key")
    with pytest.raises(ConfigError, match=r"evalhub\.pub already exists"):
        generate_keys(project)


def test_keys_list_shows_trusted_keys_and_their_ids(tmp_path: Path) -> None:
    _, ci_pem = generate_key()
    _, release_pem = generate_key()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ci.pub").write_bytes(ci_pem)
    (tmp_path / "keys" / "release.pub").write_bytes(release_pem)
    make_project(
        tmp_path,
        signing={
            "trusted_keys": [
                {"name": "ci", "path": "keys/ci.pub"},
                {"name": "release", "path": "keys/release.pub"},
            ]
        },
    )
    result = run_cli("keys", "list", cwd=tmp_path)
    assert result.code == 0, result.output
    assert f"ci       {der_key_id(ci_pem)}  keys/ci.pub" in result.stdout
    assert f"release  {der_key_id(release_pem)}  keys/release.pub" in result.stdout

    as_json = json.loads(run_cli("keys", "list", "--format", "json", cwd=tmp_path).stdout)
    assert [(k["name"], k["key_id"]) for k in as_json["keys"]] == [
        ("ci", der_key_id(ci_pem)),
        ("release", der_key_id(release_pem)),
    ]


def test_keys_list_reports_an_unreadable_key(tmp_path: Path) -> None:
    project = make_project(tmp_path, signing={"trusted_keys": [{"name": "ci", "path": "gone.pub"}]})
    (listing,) = list_keys(project)
    assert listing.key_id is None and "cannot read the public key gone.pub" in (
        listing.problem or ""
    )
    result = run_cli("keys", "list", cwd=tmp_path)
    assert result.code == 1 and "gone.pub" in result.stdout


def test_the_generated_public_key_is_trusted_when_none_are_listed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert trusted_keys(project).refs() == []
    generated = generate_keys(project)
    (key,) = trusted_keys(project).refs()
    assert key.key_id == generated.key_id and key.name == "default"


def test_the_signing_key_comes_from_the_environment_before_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path, signing={"key_env": "EVALHUB_SIGNING_KEY"})
    from_file = generate_keys(project)
    env_private, env_public = generate_key()
    monkeypatch.setenv("EVALHUB_SIGNING_KEY", env_private.decode())
    assert load_signer(project).key.key_id == der_key_id(env_public)
    monkeypatch.delenv("EVALHUB_SIGNING_KEY")
    assert load_signer(project).key.key_id == from_file.key_id


def test_no_signing_key_is_a_publish_error_saying_how_to_make_one(tmp_path: Path) -> None:
    project = make_project(tmp_path, signing={"key_env": "EVALHUB_SIGNING_KEY"})
    with pytest.raises(PublishError) as caught:
        load_signer(project)
    assert "$EVALHUB_SIGNING_KEY is not set" in caught.value.message
    assert ".evalhub/keys/evalhub.key does not exist" in caught.value.message
    assert "evalhub keys generate" in caught.value.hint


@pytest.mark.parametrize(
    ("pem", "expected"),
    [
        (b"not a key", "is not a PEM private key"),
        (
            ec.generate_private_key(ec.SECP384R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "is not an ECDSA P-256 private key",
        ),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "is encrypted",
        ),
    ],
    ids=["garbage", "p384", "encrypted"],
)
def test_unusable_private_keys_are_refused_with_the_reason(
    tmp_path: Path, pem: bytes, expected: str
) -> None:
    project = make_project(tmp_path)
    key = tmp_path / ".evalhub" / "keys" / "evalhub.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(pem)
    with pytest.raises(PublishError, match=expected):
        load_signer(project)


def test_envelopes_open_only_with_the_signing_key() -> None:
    private, public = generate_key()
    _, other = generate_key()
    signer = EnvelopeSigner(private, "test key")
    envelope = signer.sign(b'{"hello": "world"}', "application/vnd.in-toto+json")
    mine = load_public_key(public, "mine", "mine.pub")
    theirs = load_public_key(other, "theirs", "theirs.pub")

    opened = open_envelope(envelope, [theirs, mine])
    assert opened.key == mine and opened.payload == b'{"hello": "world"}'
    assert opened.signed_by == (signer.key_id,)
    assert open_envelope(envelope, [theirs]).key is None

    forged = json.loads(envelope)
    forged["payload"] = "eyJoZWxsbyI6ICJtYXJzIn0="  # {"hello": "mars"}
    assert open_envelope(json.dumps(forged).encode(), [mine]).key is None
    with pytest.raises(ValueError, match="not a DSSE envelope"):
        open_envelope(b"[]", [mine])


def test_public_keys_of_other_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a PEM public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nxx\n", "k", "k.pub")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigError, match="not an ECDSA P-256 public key"):
        load_public_key(pem, "k", "k.pub")
