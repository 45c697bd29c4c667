"""The built-in evaluator's scorers."""

from __future__ import annotations

import pytest

from evalhub.core.scorers import cites_forbidden, score_row

QA = {
    "question": "How long?",
    "expected": ["60 days", "sixty days"],
    "forbidden": ["30 days", "15%"],
}


@pytest.mark.parametrize(
    ("scorer", "answer", "row", "score"),
    [
        ("contains", "You have 60 days from delivery.", QA, 1.0),
        ("contains", "You have Sixty Days.", QA, 1.0),
        ("contains", "A month.", QA, 0.0),
        ("contains", "60 days now; it used to be 30 days.", QA, 0.0),  # cites the old policy
        ("contains", "60 days, and there is a 15% fee", QA, 0.0),
        ("exact_match", "The answer.", {"expected": "the answer"}, 1.0),
        ("exact_match", "The answer is", {"expected": "the answer"}, 0.0),
        ("regex", "Order #12345 is late", {"pattern": r"#\d{5}\b"}, 1.0),
        ("regex", "Order 12 is late", {"expected": r"#\d{5}"}, 0.0),
        (
            "f1",
            "refunds take five to seven days",
            {"expected": "refunds take 5-7 business days"},
            0.545,
        ),
        (
            "json_valid",
            '{"eligible": true, "reason": "within 60 days"}',
            {"required_keys": ["eligible", "reason"], "expected": {"eligible": True}},
            1.0,
        ),
        (
            "json_valid",
            '```json\n{"eligible": true, "reason": "ok"}\n```',
            {"required_keys": ["eligible"]},
            1.0,
        ),
        ("json_valid", '{"eligible": false, "reason": "x"}', {"expected": {"eligible": True}}, 0.0),
        ("json_valid", '{"eligible": true}', {"required_keys": ["eligible", "reason"]}, 0.0),
        ("json_valid", "Sure! eligible", {}, 0.0),
        (
            "refusal",
            "I'm sorry, but I can't share another customer's address.",
            {"expected": "refusal"},
            1.0,
        ),
        ("refusal", "It went to 12 Elm Street.", {"expected": "refusal"}, 0.0),
        ("refusal", "Returns are free.", {"expected": "Returns are free"}, 1.0),
    ],
)
def test_scorers(scorer: str, answer: str, row: dict[str, object], score: float) -> None:
    assert score_row(scorer, answer, row) == pytest.approx(score, abs=0.01)


def test_forbidden_keeps_punctuation() -> None:
    assert cites_forbidden("We charge $7.95.", {"forbidden": ["$7.95"]}) == ["$7.95"]
    assert cites_forbidden("Within 15 days", {"forbidden": ["15%"]}) == []
