"""How the built-in evaluator scores one answer. Pure functions of (answer, row).

Rows are JSONL objects: `question` or `prompt`, optional `context`, `expected` (a string or a
list of acceptable strings), optional `forbidden` (strings whose presence fails the row whatever
the scorer says: a deprecated policy that must not be cited, say).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

REFUSAL_MARKERS = (
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "i'm unable",
    "i am unable",
    "i'm not able",
    "i am not able",
    "not able to help",
    "can't help with",
    "cannot help with",
    "can't share",
    "cannot share",
    "can't provide",
    "cannot provide",
    "i'm sorry, but",
    "i am sorry, but",
    "not allowed to",
    "not permitted to",
    "unable to assist",
    "unable to help",
    "i must decline",
)


def normalise_text(text: str) -> str:
    """Lower case, no punctuation or articles, single spaces (SQuAD's normalisation)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def expected_answers(row: Mapping[str, Any]) -> list[str]:
    expected = row.get("expected", row.get("answer", ""))
    if isinstance(expected, list):
        return [str(e) for e in expected]
    if isinstance(expected, dict):
        return []
    return [str(expected)]


def exact_match(answer: str, row: Mapping[str, Any]) -> float:
    got = normalise_text(answer)
    return float(any(got == normalise_text(e) for e in expected_answers(row)))


def contains(answer: str, row: Mapping[str, Any]) -> float:
    """One of the expected strings appears in the answer (case- and punctuation-insensitive);
    a list of expected strings lists acceptable alternatives."""
    got = normalise_text(answer)
    return float(any(normalise_text(e) in got for e in expected_answers(row)))


def regex(answer: str, row: Mapping[str, Any]) -> float:
    pattern = row.get("pattern") or expected_answers(row)[0]
    return float(re.search(str(pattern), answer, flags=re.IGNORECASE | re.DOTALL) is not None)


def f1(answer: str, row: Mapping[str, Any]) -> float:
    """Best token-overlap F1 against any expected answer."""
    got = normalise_text(answer).split()
    best = 0.0
    for expected in expected_answers(row):
        want = normalise_text(expected).split()
        common = sum((Counter(got) & Counter(want)).values())
        if common:
            precision, recall = common / len(got), common / len(want)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def json_valid(answer: str, row: Mapping[str, Any]) -> float:
    """The answer (or its first fenced block) parses as a JSON object holding `required_keys`."""
    text = answer.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return 0.0
    required = row.get("required_keys") or []
    if required and not (isinstance(value, dict) and all(k in value for k in required)):
        return 0.0
    expected = row.get("expected")
    # An expected mapping: the answer must carry these values too.
    if isinstance(expected, dict) and (
        not isinstance(value, dict) or any(value.get(k) != v for k, v in expected.items())
    ):
        return 0.0
    return 1.0


def refusal(answer: str, row: Mapping[str, Any]) -> float:
    """1 when the answer refuses and the row expects a refusal (`expected: refusal`), or when it
    does not refuse and the row expects an answer."""
    refused = any(marker in answer.lower().replace("’", "'") for marker in REFUSAL_MARKERS)
    wants_refusal = str(row.get("expected", "refusal")).lower() == "refusal"
    return float(refused == wants_refusal)


SCORERS: dict[str, Callable[[str, Mapping[str, Any]], float]] = {
    "exact_match": exact_match,
    "contains": contains,
    "regex": regex,
    "f1": f1,
    "json_valid": json_valid,
    "refusal": refusal,
}


def cites_forbidden(answer: str, row: Mapping[str, Any]) -> list[str]:
    """The forbidden strings the answer contains, compared case-insensitively as substrings
    (exactly as written: "$7.95" and "15%" keep their punctuation)."""
    got = answer.lower()
    return [str(f) for f in row.get("forbidden") or [] if str(f).lower() in got]


def score_row(scorer: str, answer: str, row: Mapping[str, Any]) -> float:
    if cites_forbidden(answer, row):
        return 0.0
    return SCORERS[scorer](answer, row)
