"""Verifying a published result in an OCI store: is it what a trusted key signed?

Checks, in order, stopping at the first that fails (its reason is the verdict's):
  manifest     fetched by digest (or tag); its bytes hash to the digest; an evalhub result
  layers       every blob (config, result, spec, environment) re-hashed against its descriptor
  result       the result layer parses; the spec layer's fingerprint is the result's
  tag          a tag names this result (`<evaluation>-<fingerprint[:16]>`): it was not moved
  attestation  one attached DSSE envelope (referrers API, else the sha256-<hex> tag) that is
               signed by a trusted key, about this manifest digest, and whose predicate
               (scores, gates, verdict, fingerprint…) equals the result layer
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from evalhub.adapters.oci.artifact import DSSE_TYPE, RESULT_TYPE, TITLE, digest_of, parse_json
from evalhub.adapters.oci.attestations import Rejected, check_attestation
from evalhub.adapters.oci.references import Reference
from evalhub.adapters.oci.store import OciStore, referrers
from evalhub.core import attestation
from evalhub.core.errors import PublishError
from evalhub.core.fingerprint import FINGERPRINT_VERSION, evaluation_fingerprint
from evalhub.core.publication import Check, Verification
from evalhub.core.resolved import ResolvedEvaluation
from evalhub.core.result import ResultRecord
from evalhub.ports import Keyring


class OciResult:
    """The PublishedResult port: one result reference in an OCI store."""

    def __init__(self, store: OciStore, reference: Reference) -> None:
        self.store = store
        self.ref = reference
        self.reference = str(reference)

    def verify(self, keyring: Keyring) -> Verification:
        out = Verification(self.reference)
        try:
            _verify(self.store, self.ref, keyring, out)
        except _Failed as failed:
            out.reason = str(failed)
        except PublishError as exc:
            out.reason = exc.message
        return out


class _Failed(Exception):
    pass


def _verify(store: OciStore, ref: Reference, keys: Keyring, out: Verification) -> None:
    if not keys.refs():
        raise _Failed(
            "no trusted public keys: list them under signing.trusted_keys in evalhub.yaml "
            "or pass --key PUBLIC_KEY_FILE"
        )
    wanted = ref.digest or ref.tag
    assert wanted is not None
    manifest = store.get_manifest(wanted)
    if manifest is None:
        raise _Failed(f"{store.display} has no {wanted}")
    digest = digest_of(manifest)
    if ref.digest and digest != ref.digest:
        raise _Failed(f"the manifest fetched as {ref.digest} hashes to {digest}")
    out.digest = digest
    value = parse_json(manifest)
    if value.get("artifactType") != RESULT_TYPE:
        raise _Failed(
            f"{digest} is not an evalhub result (artifactType {value.get('artifactType')!r})"
        )
    out.passed.append(Check("manifest", f"{digest}, artifactType {RESULT_TYPE}"))

    layers = _fetch_layers(store, value)
    out.layers = {name: data for name, data in layers.items() if name != "config"}
    out.passed.append(Check("layers", f"{len(layers)} re-hashed: " + ", ".join(layers)))

    record, spec_note = _result(layers)
    out.record = record
    out.passed.append(
        Check(
            "result",
            f"{record.evaluation}, fingerprint {record.fingerprint[:16]}…, "
            f"verdict {record.verdict}; {spec_note}",
        )
    )
    if ref.tag:
        moved = attestation.check_tag(ref.tag, record)
        if moved:
            raise _Failed(moved)
        out.passed.append(Check("tag", f"{ref.tag} names this result"))

    attached = referrers(store, digest, DSSE_TYPE)
    if not attached:
        raise _Failed(f"no attestation is attached to {digest}: the result is not signed")
    problems = []
    for entry in attached:
        try:
            key = check_attestation(store, entry, digest, record, keys)
        except Rejected as failed:
            problems.append(str(failed))
            continue
        out.attestation, out.key = str(entry["digest"]), key
        out.passed.append(
            Check(
                "attestation",
                f"{entry['digest']} signed by {key.name} ({key.key_id}); "
                "its subject is this manifest and its predicate equals the result layer",
            )
        )
        return
    raise _Failed("; ".join(problems))


def _fetch_layers(store: OciStore, manifest: dict[str, Any]) -> dict[str, bytes]:
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise _Failed("the manifest has no config or layers")
    out: dict[str, bytes] = {}
    for entry in [config, *layers]:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise _Failed("the manifest has a malformed descriptor")
        annotations = entry.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        name = str(annotations.get(TITLE) or ("config" if entry is config else entry["digest"]))
        data = store.get_blob(entry["digest"])
        if data is None:
            raise _Failed(f"layer {name} ({entry['digest']}) is missing from the store")
        if digest_of(data) != entry["digest"] or len(data) != entry.get("size"):
            raise _Failed(
                f"layer {name} does not match its digest {entry['digest']} "
                f"(content hashes to {digest_of(data)}): the blob was replaced"
            )
        out[name] = data
    return out


def _result(layers: dict[str, bytes]) -> tuple[ResultRecord, str]:
    """The result record, and what was learnt from re-fingerprinting the spec layer.

    The spec layer is covered by the manifest digest like every layer; re-fingerprinting it
    is an extra consistency check, made when this evalhub computes fingerprints the same way
    (same FINGERPRINT_VERSION, spec model still readable) and skipped, with a note, otherwise.
    """
    if "result.json" not in layers or "spec.json" not in layers:
        raise _Failed("the result has no result.json or spec.json layer")
    try:
        record = ResultRecord.model_validate_json(layers["result.json"])
    except ValidationError as exc:
        raise _Failed(f"the result layer is not an evalhub result: {_first(exc)}") from exc
    if record.fingerprint_version != FINGERPRINT_VERSION:
        return (
            record,
            f"fingerprint version {record.fingerprint_version}: spec not re-fingerprinted",
        )
    try:
        resolved = ResolvedEvaluation.model_validate_json(layers["spec.json"])
    except ValidationError as exc:
        return record, f"spec layer not re-fingerprinted ({_first(exc)})"
    fingerprint = evaluation_fingerprint(resolved)
    if fingerprint != record.fingerprint or resolved.name != record.evaluation:
        raise _Failed(
            f"the spec layer ({resolved.name}, fingerprint {fingerprint[:16]}…) is not the spec "
            f"of the result ({record.evaluation}, fingerprint {record.fingerprint[:16]}…)"
        )
    return record, "the spec layer has the same fingerprint"


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
