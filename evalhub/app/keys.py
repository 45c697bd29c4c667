"""Signing keys of a project: generate a pair, list the trusted ones, load the signer.

The private key stays out of git (`.evalhub/keys/evalhub.key`, mode 0600, or the PEM in the
environment variable `signing.key_env` in CI); the public key is committed (`evalhub.pub`)
and listed under `signing.trusted_keys` of evalhub.yaml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evalhub.app import compose
from evalhub.app.project import Project
from evalhub.core.errors import ConfigError, EvalhubError, PublishError
from evalhub.core.publication import KeyRef
from evalhub.ports import Keyring, Signer


@dataclass(frozen=True)
class GeneratedKey:
    private_path: Path
    public_path: Path
    key_id: str


@dataclass(frozen=True)
class KeyListing:
    name: str
    path: str
    key_id: str | None
    problem: str | None = None


def generate_keys(project: Project, force: bool = False) -> GeneratedKey:
    """Write a new key pair where evalhub.yaml says; refuses to replace one without `force`."""
    signing = project.config.signing
    private_path = project.root / signing.key_file
    public_path = project.root / signing.public_key
    if not force:
        existing = [p for p in (private_path, public_path) if p.exists()]
        if existing:
            raise ConfigError(
                f"{_rel(project, existing[0])} already exists; not replacing a signing key",
                "signatures made with the old key stop verifying once it is gone: pass "
                "--force to replace it anyway",
            )
    private_pem, public_pem = compose.generate_key_pair()
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        compose.write_atomic(private_path, private_pem, 0o600)
        public_path.parent.mkdir(parents=True, exist_ok=True)
        compose.write_atomic(public_path, public_pem, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot write the key pair: {exc}") from exc
    (key,) = compose.keyring([(public_pem, "evalhub", str(public_path))]).refs()
    return GeneratedKey(private_path, public_path, key.key_id)


def list_keys(project: Project) -> list[KeyListing]:
    """The trusted keys of evalhub.yaml (or the default public key when none are listed)."""
    listings = []
    for name, path in _trusted_paths(project):
        try:
            key = _read_public(project, name, path)
        except ConfigError as exc:
            listings.append(KeyListing(name, path, None, exc.message))
        else:
            listings.append(KeyListing(name, path, key.key_id))
    return listings


def trusted_keys(project: Project, key_files: list[Path] | None = None) -> Keyring:
    """The keys `verify` trusts: `key_files` when given, else evalhub.yaml's trusted keys,
    else the project's public key file if it exists."""
    return compose.keyring(trusted_key_pems(project, key_files))


def trusted_key_pems(
    project: Project, key_files: list[Path] | None = None
) -> list[tuple[bytes, str, str]]:
    """(PEM, name, where it came from) of each key `trusted_keys` trusts."""
    if key_files:
        return [(_read(path, str(path)), path.name, str(path)) for path in key_files]
    return [
        (_read(project.root / path, path), name, path) for name, path in _trusted_paths(project)
    ]


def load_signer(project: Project) -> Signer:
    """The private key: the PEM in `signing.key_env` when that variable is set, else the file
    `signing.key_file`. A missing key is a PublishError (apply records and publishes later)."""
    signing = project.config.signing
    if signing.key_env and os.environ.get(signing.key_env):
        pem = os.environ[signing.key_env].encode()
        return _signer(pem, f"the key in ${signing.key_env}")
    path = project.root / signing.key_file
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        where = f"${signing.key_env} is not set and " if signing.key_env else ""
        raise PublishError(
            f"no signing key: {where}{_rel(project, path)} does not exist",
            "run `evalhub keys generate` (or, in CI, put the private key PEM in the "
            "variable named by signing.key_env)",
        ) from None
    except OSError as exc:
        raise PublishError(f"cannot read the signing key {_rel(project, path)}: {exc}") from exc
    return _signer(pem, _rel(project, path))


def _signer(pem: bytes, origin: str) -> Signer:
    try:
        return compose.signer(pem, origin)
    except EvalhubError as exc:
        raise PublishError(exc.message, exc.hint) from exc


def _trusted_paths(project: Project) -> list[tuple[str, str]]:
    signing = project.config.signing
    if signing.trusted_keys:
        return [(k.name, k.path) for k in signing.trusted_keys]
    if (project.root / signing.public_key).is_file():
        return [("default", signing.public_key)]
    return []


def _read_public(project: Project, name: str, path: str) -> KeyRef:
    (key,) = compose.keyring([(_read(project.root / path, path), name, path)]).refs()
    return key


def _read(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the public key {shown}: {exc.strerror or exc}",
            "fix signing.trusted_keys in evalhub.yaml, or pass --key PUBLIC_KEY_FILE",
        ) from exc


def _rel(project: Project, path: Path) -> str:
    try:
        return str(path.relative_to(project.root))
    except ValueError:
        return str(path)


def keyless(project: Project) -> bool:
    """No key at all: no private key to sign with and no public key to trust (a project that
    never ran `evalhub keys generate`), as opposed to a CI step that holds only the public key."""
    return not has_signing_key(project) and not _trusted_paths(project)


def has_signing_key(project: Project) -> bool:
    """Whether apply can sign: the key variable is set, or the key file exists."""
    signing = project.config.signing
    if signing.key_env and os.environ.get(signing.key_env):
        return True
    return (project.root / signing.key_file).is_file()
