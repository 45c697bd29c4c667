"""The signed statement about a result, and the pure checks `evalhub verify` makes on it.

The statement is an in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/
spec/v1/statement.md) whose subject is the result manifest (named by the result's tag, since
the same bytes may live in several registries) and whose predicate repeats what the result
layer says: fingerprint, spec commit, model identity, scores, the thresholds and gates locked
before the run, verdict, MLflow run and evalhub version. `verify` accepts a result only when a
trusted signature covers a statement about exactly this manifest that agrees with its layer.
"""

from __future__ import annotations

import json
from typing import Any

from evalhub.core.result import ResultRecord

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://evalhub.dev/attestation/evaluation-result/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"  # the DSSE payloadType of an in-toto statement


def predicate(record: ResultRecord) -> dict[str, Any]:
    return {
        "evaluation": record.evaluation,
        "fingerprint": record.fingerprint,
        "fingerprintVersion": record.fingerprint_version,
        "specCommit": record.spec_commit,
        "source": record.source,
        "model": {"name": record.model, "identity": record.model_identity},
        "collection": record.collection,
        "scores": {
            b.key: {
                "metric": b.metric,
                "value": b.value,
                "score": b.score,
                "weight": b.weight,
                "threshold": b.threshold,
                "passed": b.passed,
            }
            for b in record.benchmarks
        },
        "aggregate": record.aggregate,
        "gates": record.gates.model_dump(mode="json"),
        "verdict": record.verdict,
        "mlflow": {"trackingUri": record.mlflow.tracking_uri, "runId": record.mlflow.run_id},
        "evalhub": {"version": record.evalhub_version},
        "created": record.created,
    }


def statement(
    record: ResultRecord, manifest_digest: str, image: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The statement about the result manifest `manifest_digest` ("sha256:<hex>") and, for a
    Model with an image, about that image too (`image`: its repository and digest), so the
    statement itself names the model bytes it judged."""
    subjects = [{"name": record.tag, "digest": {"sha256": _hex(manifest_digest)}}]
    if image is not None:
        subjects.append({"name": image[0], "digest": {"sha256": _hex(image[1])}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(record),
    }


def statement_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_statement(
    payload: bytes, manifest_digest: str, record: ResultRecord, image: str | None = None
) -> list[str]:
    """Why the signed `payload` does not attest the result `record` stored in the manifest
    `manifest_digest` (and, given `image`, a model image digest, that the statement names that
    image too); empty when it does."""
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"the signed statement is not JSON ({exc})"]
    if not isinstance(value, dict):
        return ["the signed statement is not a JSON object"]
    if value.get("_type") != STATEMENT_TYPE:
        return [f"the signed payload is not an in-toto Statement v1 (_type {value.get('_type')!r})"]
    if value.get("predicateType") != PREDICATE_TYPE:
        kind = value.get("predicateType")
        return [f"the statement's predicateType is {kind!r}, not an evalhub result"]
    subjects = value.get("subject")
    digests = [
        s.get("digest", {}).get("sha256")
        for s in (subjects if isinstance(subjects, list) else [])
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    ]
    if _hex(manifest_digest) not in digests:
        named = ", ".join(f"sha256:{d}" for d in digests if isinstance(d, str)) or "nothing"
        return [
            f"the attestation is about {named}, not about this result {manifest_digest} "
            "(an attestation of another result)"
        ]
    if image is not None and _hex(image) not in digests:
        named = ", ".join(f"sha256:{d}" for d in digests if isinstance(d, str))
        return [
            f"the attestation names {named}, not the model image {image} "
            "(an attestation of another model's image)"
        ]
    attested = value.get("predicate")
    if not isinstance(attested, dict):
        return ["the statement has no predicate"]
    return predicate_differences(attested, predicate(record))


def predicate_differences(attested: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What the signed predicate says differently from the result layer, scores first."""
    problems = []
    signed_scores = attested.get("scores")
    scores = expected["scores"]
    if signed_scores != scores:
        if not isinstance(signed_scores, dict):
            problems.append("the attested scores are missing")
        else:
            keys = sorted(set(signed_scores) | set(scores))
            diffs = [
                _score_difference(k, signed_scores.get(k), scores.get(k))
                for k in keys
                if signed_scores.get(k) != scores.get(k)
            ]
            problems.append("the attested scores differ from the result: " + "; ".join(diffs))
    for field in sorted(set(attested) | set(expected)):
        if field != "scores" and attested.get(field) != expected.get(field):
            problems.append(
                f"the attested {field} differs from the result: "
                f"{_short(attested.get(field))} vs {_short(expected.get(field))}"
            )
    return problems


def check_tag(tag: str, record: ResultRecord) -> str | None:
    """Why the tag a result was fetched by does not name it (a tag moved to another result)."""
    if tag == record.tag:
        return None
    return (
        f"tag {tag} points at the result of {record.evaluation} with fingerprint "
        f"{record.fingerprint[:16]}…, whose tag is {record.tag}: the tag was moved"
    )


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _score_difference(key: str, attested: Any, result: Any) -> str:
    if (
        isinstance(attested, dict)
        and isinstance(result, dict)
        and attested.get("score") != result.get("score")
    ):
        return f"{key}: attested {attested.get('score')!r}, result {result.get('score')!r}"
    return f"{key}: attested {_short(attested)}, result {_short(result)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
