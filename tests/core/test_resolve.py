"""Resolution: references followed, defaults applied, precedence and digests."""

from __future__ import annotations

from evalhub.core.datasets import file_refs, normalise
from evalhub.core.resolve import resolve
from tests.specs import BASE, EVALUATION, PROVIDER, edit, validate


def test_resolves_the_collection_into_units_with_merged_params() -> None:
    result = validate(*BASE)
    assert result.ok, result.diagnostics
    (evaluation,) = resolve(result.specs, {"data/faq.jsonl": "sha256:aa"})
    assert evaluation.collection == "quality@1"
    assert evaluation.collection_threshold == 0.6
    faq, tone = evaluation.units
    # catalogue < collection entry < evaluation params
    assert faq.params == {"scorer": "exact_match", "limit": 3, "seed": 7}
    assert tone.params == {"limit": 3, "seed": 7}
    assert faq.files == {"data/faq.jsonl": "sha256:aa"}
    assert tone.files == {}
    assert faq.weight == 2 and tone.weight == 1.0  # a missing weight means 1
    # the strictest of the entry threshold (0.5) and the evaluation's gate (0.8)
    assert faq.threshold == 0.8 and tone.threshold is None
    assert faq.model.revision == "v1" and faq.model.endpoint is not None
    assert faq.provider.adapter == "builtin"
    assert evaluation.labels == {"team": "support"}


def test_inline_benchmarks_follow_the_collection() -> None:
    inline = edit(
        EVALUATION,
        spec__benchmarks=[{"provider": "builtin", "benchmark": "faq", "name": "faq-strict"}],
    )
    result = validate(*BASE[:3], inline)
    assert result.ok, result.diagnostics
    (evaluation,) = resolve(result.specs, {"data/faq.jsonl": "sha256:bb"})
    assert [u.key for u in evaluation.units] == ["faq", "tone", "faq-strict"]
    assert evaluation.units[2].params == {"scorer": "contains", "limit": 3, "seed": 7}


def test_dataset_paths_are_relative_to_the_spec_file_and_stay_inside_the_root() -> None:
    assert normalise("providers", "../datasets/a.jsonl") == "datasets/a.jsonl"
    assert normalise("", "./a/../b.jsonl") == "b.jsonl"
    assert normalise("providers", "../../etc/passwd") is None
    assert normalise("", "/etc/passwd") is None
    assert normalise("", "C:/data.jsonl") is None
    assert normalise("", "..") is None


def test_escaping_dataset_path_is_a_diagnostic_at_the_field() -> None:
    bad = PROVIDER.replace("data/faq.jsonl", "../../secret.jsonl")
    result = validate(bad)
    refs, problems = file_refs(result.specs)
    assert refs == []
    (problem,) = problems
    assert problem.path == "spec.benchmarks[0].dataset"
    assert "leaves the spec root" in problem.message
    assert (problem.line, problem.column) == (10, 16)
