"""Signing keys and DSSE envelopes (https://github.com/secure-systems-lab/dsse).

Keys are ECDSA P-256 (cryptography), private keys PKCS#8 PEM without a passphrase, public
keys SubjectPublicKeyInfo PEM. A key's id is `sha256:` + the hex sha256 of the public key's
DER-encoded SubjectPublicKeyInfo (`openssl pkey -pubin -outform DER | sha256sum` gives it),
and it is the `keyid` of the signatures evalhub writes. Envelopes are securesystemslib's
`Envelope`, signed by its `CryptoSigner`; library errors become ConfigError (a bad key file)
or a `Verified` without a key (a bad signature) here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib import exceptions as sslib_errors
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from evalhub.core.errors import ConfigError
from evalhub.core.publication import KeyRef, Opened

CURVE = ec.SECP256R1


def generate_key() -> tuple[bytes, bytes]:
    """A new key pair: (private key PEM, public key PEM)."""
    private = ec.generate_private_key(CURVE())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private_pem, public_pem(private.public_key())


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class PublicKey:
    name: str  # the trusted key's name in evalhub.yaml, or the file it came from
    key_id: str
    key: ec.EllipticCurvePublicKey

    def sslib(self) -> SSlibKey:
        return SSlibKey.from_crypto(self.key, keyid=self.key_id)

    @property
    def ref(self) -> KeyRef:
        return KeyRef(self.name, self.key_id)


class TrustedKeys:
    """The Keyring port over public keys loaded here."""

    def __init__(self, keys: list[PublicKey]) -> None:
        self._keys = list(keys)

    def refs(self) -> list[KeyRef]:
        return [k.ref for k in self._keys]

    def open(self, envelope: bytes) -> Opened:
        opened = open_envelope(envelope, self._keys)
        key = opened.key.ref if opened.key else None
        return Opened(opened.payload, opened.payload_type, key, opened.signed_by)


def load_public_key(pem: bytes, name: str, origin: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"{origin} is not a PEM public key ({_first_line(exc)})",
            "point at the public key `evalhub keys generate` wrote (e.g. evalhub.pub)",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, CURVE):
        raise ConfigError(
            f"{origin} is not an ECDSA P-256 public key",
            "evalhub signs with ECDSA P-256 keys: create one with `evalhub keys generate`",
        )
    return PublicKey(name, key_id(key), key)


class EnvelopeSigner:
    """Signs statements into DSSE envelopes with one private key."""

    def __init__(self, pem: bytes, origin: str) -> None:
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except TypeError as exc:  # encrypted, and no password given
            raise ConfigError(
                f"{origin} is encrypted; evalhub reads unencrypted PKCS#8 keys",
                "keep the key in a secret store and hand it over in signing.key_env",
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigError(
                f"{origin} is not a PEM private key ({_first_line(exc)})",
                "create one with `evalhub keys generate`",
            ) from exc
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, CURVE
        ):
            raise ConfigError(
                f"{origin} is not an ECDSA P-256 private key",
                "create one with `evalhub keys generate`",
            )
        self.origin = origin
        self.key_id = key_id(private.public_key())
        self.public_key = PublicKey("signer", self.key_id, private.public_key())
        self._signer = CryptoSigner(private, self.public_key.sslib())

    @property
    def key(self) -> KeyRef:
        return self.public_key.ref

    def keyring(self) -> TrustedKeys:
        return TrustedKeys([self.public_key])

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        """The DSSE envelope of `payload`, as JSON bytes."""
        envelope = Envelope(payload, payload_type, {})
        envelope.sign(self._signer)
        return json.dumps(envelope.to_dict(), sort_keys=True, indent=2).encode() + b"\n"


@dataclass(frozen=True)
class Verified:
    """An envelope opened: its payload, and the trusted key that signed it (None: none did)."""

    payload: bytes
    payload_type: str
    key: PublicKey | None
    signed_by: tuple[str, ...]  # the key ids the signatures name


def open_envelope(data: bytes, trusted: list[PublicKey]) -> Verified:
    """Parse a DSSE envelope and check its signatures against `trusted`.
    Raises ValueError when `data` is not an envelope."""
    try:
        value: Any = json.loads(data)
        envelope = Envelope.from_dict(json.loads(json.dumps(value)))
    except (
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        AttributeError,
        ValueError,
        sslib_errors.FormatError,
    ) as exc:
        raise ValueError(f"not a DSSE envelope ({_first_line(exc)})") from exc
    signed_by = tuple(envelope.signatures)
    by_id = {k.key_id: k for k in trusted}
    key = None
    if trusted:
        try:
            accepted = envelope.verify([k.sslib() for k in trusted], 1)
        except sslib_errors.VerificationError:
            accepted = {}
        key = next((by_id[i] for i in accepted if i in by_id), None)
    return Verified(envelope.payload, envelope.payload_type, key, signed_by)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
