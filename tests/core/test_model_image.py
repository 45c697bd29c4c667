"""A Model named by its OCI image (issue 19): the digest is the identity, checked offline."""

from __future__ import annotations

import json

from evalhub.core import attestation
from evalhub.core.fingerprint import model_identity
from tests.core.test_fingerprint import BASELINE, prints, resolved
from tests.registry import sample_result
from tests.specs import COLLECTION, EVALUATION, MODEL, PROVIDER, edit, validate

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def with_image(image: str | None, revision: str | None = "v1") -> list[str]:
    model = edit(MODEL, spec__image=image) if image else MODEL
    if revision is None:
        model = edit(model, spec__revision=...)
    elif revision != "v1":
        model = edit(model, spec__revision=revision)
    return [model, PROVIDER, COLLECTION, EVALUATION]


def test_the_image_digest_replaces_the_revision_as_identity() -> None:
    base = prints(resolved(*with_image(f"registry.example/models/smol@{A}")))
    assert base != BASELINE  # naming the image is a new identity
    # The revision is a label once the image is given; a tag or another registry (a mirror)
    # naming the same digest is the same model.
    assert prints(resolved(*with_image(f"registry.example/models/smol@{A}", "v2"))) == base
    assert prints(resolved(*with_image(f"registry.example/models/smol@{A}", None))) == base
    assert prints(resolved(*with_image(f"mirror.example:5000/smol:v3@{A}"))) == base
    # Other bytes are another model: every unit and the evaluation change.
    other = prints(resolved(*with_image(f"registry.example/models/smol@{B}")))
    assert other[0] != base[0] and not set(other[1]) & set(base[1])


def test_identities_without_an_image_keep_the_revision_and_no_image_key() -> None:
    (unit, *_) = resolved(*with_image(None)).units
    identity = model_identity(unit.model)
    assert identity["revision"] == "v1" and "image" not in identity
    (unit, *_) = resolved(*with_image(f"r.example/m@{A}")).units
    identity = model_identity(unit.model)
    assert identity["image"] == A and "revision" not in identity


def test_validate_refuses_a_tag_alone_and_a_model_with_neither() -> None:
    tagged = validate(edit(MODEL, spec__image="registry.example/models/smol:v1"))
    (problem,) = tagged.diagnostics
    assert problem.path == "spec.image" and "not pinned by a digest" in problem.message
    assert "HOST[:PORT]/REPOSITORY@sha256:HEX" in problem.hint
    bare = validate(edit(MODEL, spec__image=f"smol@{A}"))  # no registry host
    assert [d.path for d in bare.diagnostics] == ["spec.image"]
    neither = validate(edit(MODEL, spec__revision=...))
    (problem,) = neither.diagnostics
    assert "give `revision`" in problem.message and "image:" in problem.hint


def test_the_statement_names_the_image_and_its_check_requires_it() -> None:
    record = sample_result().record()
    result = "sha256:" + "c" * 64
    with_image = attestation.statement(record, result, ("registry.example/models/smol", A))
    digests = [s["digest"]["sha256"] for s in with_image["subject"]]
    assert digests == ["c" * 64, "a" * 64]
    payload = attestation.statement_bytes(with_image)
    assert attestation.check_statement(payload, result, record, A) == []
    (problem,) = attestation.check_statement(payload, result, record, B)
    assert "not the model image" in problem and "another model's image" in problem
    # A statement about the result alone does not vouch for any image.
    alone = attestation.statement_bytes(attestation.statement(record, result))
    assert attestation.check_statement(alone, result, record) == []
    assert attestation.check_statement(alone, result, record, A) != []
    assert json.loads(alone)["subject"] == with_image["subject"][:1]
