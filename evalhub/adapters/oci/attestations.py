"""Attestations as they hang off a result in an OCI store: fetch one, re-hash it, open its
DSSE envelope with the trusted keys, and check its statement against the result."""

from __future__ import annotations

from typing import Any

from evalhub.adapters.oci.artifact import DSSE_TYPE, digest_of, parse_json
from evalhub.adapters.oci.store import OciStore
from evalhub.core import attestation
from evalhub.core.publication import KeyRef
from evalhub.core.result import ResultRecord
from evalhub.ports import Keyring


class Rejected(Exception):
    """Why an attestation does not vouch for the result (the message says)."""


def check_attestation(
    store: OciStore,
    entry: dict[str, Any],
    subject: str,
    record: ResultRecord,
    keys: Keyring,
    image: str | None = None,
) -> KeyRef:
    """The trusted key that signed the attestation `entry` (a referrers descriptor) about the
    result manifest `subject` holding `record`; raises Rejected saying what is wrong.

    With `image` (a model image digest), the attestation is the one attached to that image:
    its manifest names the image as its `subject`, and its statement names both the result
    and the image."""
    name = entry.get("digest")
    if not isinstance(name, str):
        raise Rejected("a referrers entry has no digest")
    manifest = store.get_manifest(name)
    if manifest is None:
        raise Rejected(f"attestation {name} is listed but missing from the store")
    if digest_of(manifest) != name:
        raise Rejected(f"attestation {name} does not match its digest")
    value = parse_json(manifest)
    named = (
        value.get("subject", {}).get("digest") if isinstance(value.get("subject"), dict) else None
    )
    if image is not None and named != image:
        raise Rejected(f"attestation {name} is attached to {named}, not to the image {image}")
    if image is None and named != subject:
        raise Rejected(f"attestation {name} is attached to {named}, not to this result {subject}")
    layers = [
        layer
        for layer in value.get("layers") or []
        if isinstance(layer, dict) and layer.get("mediaType") == DSSE_TYPE
    ]
    if len(layers) != 1 or not isinstance(layers[0].get("digest"), str):
        raise Rejected(f"attestation {name} does not hold exactly one DSSE envelope")
    envelope = store.get_blob(layers[0]["digest"])
    if envelope is None or digest_of(envelope) != layers[0]["digest"]:
        raise Rejected(f"the envelope of attestation {name} is missing or was replaced")
    try:
        opened = keys.open(envelope)
    except ValueError as exc:
        raise Rejected(f"attestation {name} is {exc}") from exc
    if opened.key is None:
        signers = ", ".join(opened.signed_by) or "no key"
        trusted = ", ".join(f"{k.name} ({k.key_id})" for k in keys.refs())
        raise Rejected(
            f"attestation {name} is not signed by a trusted key: signed by {signers}; "
            f"trusted: {trusted}"
        )
    if opened.payload_type != attestation.PAYLOAD_TYPE:
        raise Rejected(
            f"attestation {name} signs a {opened.payload_type}, not an in-toto statement"
        )
    problems = attestation.check_statement(opened.payload, subject, record, image)
    if problems:
        raise Rejected(f"attestation {name}: " + "; ".join(problems))
    return opened.key
