"""Identity: what changes a fingerprint, and — on purpose — what does not."""

from __future__ import annotations

import pytest

from evalhub.core.canonical import canonical_json
from evalhub.core.fingerprint import evaluation_fingerprint, unit_fingerprint
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedEvaluation
from tests.specs import BASE, COLLECTION, EVALUATION, MODEL, PROVIDER, edit, validate

DIGESTS = {"data/faq.jsonl": "sha256:" + "a" * 64}


def resolved(*texts: str, digests: dict[str, str] = DIGESTS) -> ResolvedEvaluation:
    result = validate(*texts)
    assert result.ok, result.diagnostics
    (evaluation,) = resolve(result.specs, digests)
    return evaluation


def prints(evaluation: ResolvedEvaluation) -> tuple[str, list[str]]:
    return evaluation_fingerprint(evaluation), [unit_fingerprint(u) for u in evaluation.units]


BASELINE = prints(resolved(*BASE))


def test_canonical_json_normalises_numbers_and_order() -> None:
    assert canonical_json({"b": 1.0, "a": [2.50, -0.0]}) == '{"a":[2.5,0],"b":1}'
    assert canonical_json({"é": "ü"}) == '{"é":"ü"}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


NOT_IDENTITY = {
    "descriptions": [edit(EVALUATION, spec__description="new words"), MODEL, PROVIDER, COLLECTION],
    "labels and annotations": [
        edit(EVALUATION, metadata__labels={"x": "y"}, metadata__annotations={"a": "b"}),
        edit(MODEL, metadata__labels={"tier": "gold"}),
        PROVIDER,
        COLLECTION,
    ],
    "comments and formatting": [
        "# a comment\n" + MODEL.replace("revision: v1", "revision:    'v1'   # pinned"),
        PROVIDER,
        COLLECTION,
        EVALUATION,
    ],
    "key order": [
        MODEL.replace(
            '  endpoint: {url: "http://127.0.0.1:8000/v1", api: chat, served_name: smollm2-135m}\n'
            "  revision: v1\n",
            "  revision: v1\n"
            '  endpoint: {served_name: smollm2-135m, api: chat, url: "http://127.0.0.1:8000/v1"}\n',
        ),
        PROVIDER,
        COLLECTION,
        EVALUATION,
    ],
    "executor, concurrency, timeouts": [
        edit(
            EVALUATION,
            spec__execution={
                "executor": "kubernetes",
                "queue": "gpu",
                "concurrency": 8,
                "timeout_seconds": 60,
            },
        ),
        edit(MODEL, spec__defaults={"timeout_seconds": 5}),
        PROVIDER,
        COLLECTION,
    ],
    "experiment name and tags": [
        edit(EVALUATION, spec__experiment={"name": "other", "tags": {"team": "x"}}),
        MODEL,
        PROVIDER,
        COLLECTION,
    ],
    "integral float spelled as int": [
        MODEL,
        PROVIDER,
        COLLECTION.replace("weight: 2", "weight: 2.0"),
        EVALUATION,
    ],
}


@pytest.mark.parametrize("case", sorted(NOT_IDENTITY))
def test_runtime_and_cosmetic_changes_keep_every_fingerprint(case: str) -> None:
    assert prints(resolved(*NOT_IDENTITY[case])) == BASELINE


def test_model_revision_changes_every_unit() -> None:
    ev, units = prints(resolved(edit(MODEL, spec__revision="v2"), PROVIDER, COLLECTION, EVALUATION))
    assert ev != BASELINE[0]
    assert all(a != b for a, b in zip(units, BASELINE[1], strict=True))


def test_dataset_content_changes_only_its_unit() -> None:
    ev, units = prints(resolved(*BASE, digests={"data/faq.jsonl": "sha256:" + "b" * 64}))
    assert ev != BASELINE[0]
    assert units[0] != BASELINE[1][0] and units[1] == BASELINE[1][1]


def test_weight_and_threshold_change_the_evaluation_not_the_units() -> None:
    for collection in (
        COLLECTION.replace("weight: 2", "weight: 3"),
        COLLECTION.replace("threshold: 0.6", "threshold: 0.65"),
    ):
        ev, units = prints(resolved(MODEL, PROVIDER, collection, EVALUATION))
        assert ev != BASELINE[0]
        assert units == BASELINE[1]
    ev, units = prints(
        resolved(MODEL, PROVIDER, COLLECTION, edit(EVALUATION, spec__gates={"min_score": 0.9}))
    )
    assert ev != BASELINE[0] and units == BASELINE[1]


def test_provider_version_and_requirement_order() -> None:
    pinned = edit(PROVIDER, spec__version="1.0", spec__requirements=["a==1", "b==2"])
    reordered = edit(PROVIDER, spec__version="1.0", spec__requirements=["b==2", "a==1"])
    bumped = edit(PROVIDER, spec__version="1.1", spec__requirements=["a==1", "b==2"])
    one = prints(resolved(MODEL, pinned, COLLECTION, EVALUATION))
    assert one[1] != BASELINE[1]
    assert prints(resolved(MODEL, reordered, COLLECTION, EVALUATION)) == one
    assert prints(resolved(MODEL, bumped, COLLECTION, EVALUATION))[1] != one[1]


def test_params_and_sampling_are_identity() -> None:
    _, units = prints(
        resolved(
            MODEL, PROVIDER, COLLECTION, edit(EVALUATION, spec__params={"limit": 4, "seed": 7})
        )
    )
    assert units[0] != BASELINE[1][0]
    _, units = prints(
        resolved(edit(MODEL, spec__defaults={"temperature": 0.7}), PROVIDER, COLLECTION, EVALUATION)
    )
    assert units != BASELINE[1]
