"""Verifying a published result in an OCI store: is it what a trusted key signed?

Checks, in order, stopping at the first that fails (its reason is the verdict's):
  manifest     fetched by digest (or tag); its bytes hash to the digest; an evalhub result
  layers       every blob (config, result, spec, environment) re-hashed against its descriptor
  result       the result layer parses; the spec layer's fingerprint is the result's
  tag          a tag names this result (`<evaluation>-<fingerprint[:16]>`): it was not moved
  attestation  one attached DSSE envelope (referrers API, else the sha256-<hex> tag) that is
               signed by a trusted key, about this manifest digest, and whose predicate
               (scores, gates, verdict, fingerprint…) equals the result layer

A model image (`verify --model-image REF@DIGEST`): the image manifest re-hashed (and, given a
tag, the tag still names that digest); then every evalhub result among its referrers gets the
manifest, layers and result checks above, plus
  image        the result manifest's `subject` is the image and its record judged this
               image digest (a result re-pointed from another image fails here)
  attestation  one DSSE attestation attached to the image, signed by a trusted key, whose
               statement names both the result and the image digest
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
from evalhub.core.publication import Check, ImageVerification, Verification
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
    _need_keys(keys)
    wanted = ref.digest or ref.tag
    assert wanted is not None
    digest, _, record = _check_result(store, wanted, ref.digest, out)
    if ref.tag:
        moved = attestation.check_tag(ref.tag, record)
        if moved:
            raise _Failed(moved)
        out.passed.append(Check("tag", f"{ref.tag} names this result"))
    attached = referrers(store, digest, DSSE_TYPE)
    if not attached:
        raise _Failed(f"no attestation is attached to {digest}: the result is not signed")
    _check_attestations(store, attached, digest, record, keys, out)


def _need_keys(keys: Keyring) -> None:
    if not keys.refs():
        raise _Failed(
            "no trusted public keys: list them under signing.trusted_keys in evalhub.yaml "
            "or pass --key PUBLIC_KEY_FILE"
        )


def _check_result(
    store: OciStore, wanted: str, digest: str | None, out: Verification
) -> tuple[str, dict[str, Any], ResultRecord]:
    """The result manifest at `wanted` (tag or digest) re-hashed with its layers: its digest,
    manifest and record."""
    manifest = store.get_manifest(wanted)
    if manifest is None:
        raise _Failed(f"{store.display} has no {wanted}")
    actual = digest_of(manifest)
    if digest and actual != digest:
        raise _Failed(f"the manifest fetched as {digest} hashes to {actual}")
    out.digest = actual
    value = parse_json(manifest)
    if value.get("artifactType") != RESULT_TYPE:
        raise _Failed(
            f"{actual} is not an evalhub result (artifactType {value.get('artifactType')!r})"
        )
    out.passed.append(Check("manifest", f"{actual}, artifactType {RESULT_TYPE}"))

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
    return actual, value, record


def _check_attestations(
    store: OciStore,
    attached: list[dict[str, Any]],
    digest: str,
    record: ResultRecord,
    keys: Keyring,
    out: Verification,
    image: str | None = None,
) -> None:
    """The first of the `attached` attestations a trusted key signed about this result (and
    `image`); the reasons of all of them when none was."""
    problems = []
    for entry in attached:
        try:
            key = check_attestation(store, entry, digest, record, keys, image)
        except Rejected as failed:
            problems.append(str(failed))
            continue
        out.attestation, out.key = str(entry["digest"]), key
        about = f"this manifest and the image {image}" if image else "this manifest"
        out.passed.append(
            Check(
                "attestation",
                f"{entry['digest']} signed by {key.name} ({key.key_id}); "
                f"its subject is {about} and its predicate equals the result layer",
            )
        )
        return
    raise _Failed("; ".join(problems) or "no attestation names this result")


class OciModelImage:
    """The ModelImage port: the evalhub results attached to a model's image (its referrers)."""

    def __init__(self, store: OciStore, reference: Reference) -> None:
        assert reference.digest is not None
        self.store = store
        self.ref = reference
        self.reference = str(reference)
        self.digest = reference.digest

    def verify(self, keyring: Keyring) -> ImageVerification:
        out = ImageVerification(self.reference, self.digest)
        try:
            _need_keys(keyring)
            self._check_image()
            entries = referrers(self.store, self.digest)
        except _Failed as failed:
            out.reason = str(failed)
            return out
        except PublishError as exc:
            out.reason = exc.message
            return out
        attestations = [e for e in entries if e.get("artifactType") == DSSE_TYPE]
        for entry in entries:
            if entry.get("artifactType") != RESULT_TYPE or not isinstance(entry.get("digest"), str):
                continue
            result = Verification(f"{Reference(self.ref.target)}@{entry['digest']}")
            try:
                self._verify_result(entry["digest"], attestations, keyring, result)
            except _Failed as failed:
                result.reason = str(failed)
            except PublishError as exc:
                result.reason = exc.message
            out.results.append(result)
        if not out.results:
            out.reason = f"no evalhub result is attached to {self.ref.target}@{self.digest}"
        return out

    def _check_image(self) -> None:
        manifest = self.store.get_manifest(self.digest)
        if manifest is None:
            raise _Failed(f"{self.store.display} has no image {self.digest}")
        if digest_of(manifest) != self.digest:
            raise _Failed(f"the image fetched as {self.digest} hashes to {digest_of(manifest)}")
        if self.ref.tag:
            tagged = self.store.get_manifest(self.ref.tag)
            now = digest_of(tagged) if tagged is not None else None
            if now != self.digest:
                raise _Failed(
                    f"the tag {self.ref.tag} now names {now or 'nothing'}, not {self.digest}: "
                    "the image was re-tagged; the results attached to "
                    f"{self.digest} say nothing about the image the tag names now"
                )

    def _verify_result(
        self,
        digest: str,
        attestations: list[dict[str, Any]],
        keys: Keyring,
        out: Verification,
    ) -> None:
        _, value, record = _check_result(self.store, digest, digest, out)
        subject = value.get("subject")
        named = subject.get("digest") if isinstance(subject, dict) else None
        if named != self.digest:
            raise _Failed(
                f"the result {digest} is listed among the image's referrers but is attached "
                f"to {named or 'nothing'}, not to {self.digest}"
            )
        judged = record.model_identity.get("image")
        if judged != self.digest:
            what = f"the image {judged}" if judged else "a model without an image"
            raise _Failed(
                f"the result judged {what}, not {self.digest}: it was re-pointed to this image"
            )
        out.passed.append(Check("image", f"the result is attached to and judged {self.digest}"))
        _check_attestations(self.store, attestations, digest, record, keys, out, self.digest)


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
