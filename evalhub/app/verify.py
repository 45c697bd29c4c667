"""`evalhub verify`: is this published result what a trusted key signed?

The checks themselves (manifest, layers, result, tag, attestation) belong to the target's
format: evalhub/adapters/oci/verify.py. Here: which result, and which keys are trusted.
"""

from __future__ import annotations

from pathlib import Path

from evalhub.app import compose
from evalhub.app.keys import trusted_keys
from evalhub.app.project import Project
from evalhub.core.errors import ConfigError
from evalhub.core.publication import (
    VERIFICATION_VERSION,
    Check,
    ImageVerification,
    Verification,
)
from evalhub.ports import Keyring

__all__ = [
    "VERIFICATION_VERSION",
    "Check",
    "ImageVerification",
    "Verification",
    "verify_model_image",
    "verify_result",
]


def verify_result(
    project: Project,
    reference: str,
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
) -> Verification:
    """Verify the result at `reference` (a target with :TAG and/or @DIGEST, or a bare tag or
    digest in registry.target) against `key_files`, or the trusted keys of evalhub.yaml. A bad
    reference or key file raises ConfigError; everything about the artifact itself is
    reported in the Verification."""
    result = compose.published_result(project, reference, insecure)  # a bad reference first
    return result.verify(_keys(project, key_files))


def _keys(project: Project, key_files: list[Path] | None) -> Keyring:
    keys = trusted_keys(project, key_files)
    if not keys.refs():  # nothing could be verified: a setting is missing, not a bad result
        raise ConfigError(
            "no trusted public keys to verify with",
            "list them under signing.trusted_keys in evalhub.yaml (`evalhub keys generate` "
            "writes evalhub.pub), or pass --key PUBLIC_KEY_FILE",
        )
    return keys


def verify_model_image(
    project: Project,
    image: str,
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
) -> ImageVerification:
    """Every evalhub result attached to the model image `image` (REPOSITORY@sha256:…), each
    verified against `key_files` or the trusted keys of evalhub.yaml. Needs no ledger and no
    git history: only the registry and the keys."""
    return compose.model_image(project, image, insecure).verify(_keys(project, key_files))
