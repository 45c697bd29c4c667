"""The pure checks behind audit and gate: loosened thresholds, ledger-vs-attestation
differences, durations and regressions."""

from __future__ import annotations

from datetime import timedelta

from evalhub.core.attested import record_differences
from evalhub.core.gate import parse_duration, regression
from evalhub.core.ledger import LedgerEntry
from evalhub.core.result import ResultRecord
from evalhub.core.thresholds import loosened, recorded_thresholds
from evalhub.core.trust import (
    KeyTrust,
    PolicyTerms,
    TrustSettings,
    policy_loosenings,
    root_changes,
)
from tests.app.test_ledger import entry_data


def entry(**changes: object) -> LedgerEntry:
    data = entry_data()
    data.update(changes)
    return LedgerEntry.model_validate(data)


def record_of(e: LedgerEntry) -> ResultRecord:
    data = e.model_dump(mode="json")
    data["created"] = data.pop("time")
    for key in ("format_version", "spec_files", "publication"):
        data.pop(key)
    return ResultRecord.model_validate(data)


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)


def test_loosened_thresholds() -> None:
    before = {
        "a threshold": 0.8,
        "min_score": 0.5,
        "collection threshold": None,
        "max_regression": 0.02,
    }
    assert loosened(before, dict(before)) == []
    stricter = {**before, "a threshold": 0.9, "max_regression": 0.01, "collection threshold": 0.3}
    assert loosened(before, stricter) == []
    assert loosened(before, {**before, "a threshold": 0.7}) == ["a threshold lowered 0.8 → 0.7"]
    assert loosened(before, {**before, "max_regression": 0.1}) == [
        "max_regression raised 0.02 → 0.1"
    ]
    assert loosened(before, {**before, "min_score": None}) == ["min_score 0.5 was removed"]
    gone = {k: v for k, v in before.items() if k != "a threshold"}
    assert loosened(before, gone) == ["a was removed (its threshold was 0.8)"]


def test_record_differences_name_each_field() -> None:
    e = entry()
    assert record_differences(e, record_of(e)) == []
    raised = entry(aggregate=0.99)
    assert record_differences(raised, record_of(e)) == [
        f"aggregate: the ledger says 0.99, the attestation {e.aggregate:.6g}"
    ]
    data = entry_data()
    data["benchmarks"][0]["score"] = 1.0
    edited = LedgerEntry.model_validate(data)
    (difference,) = record_differences(edited, record_of(e))
    assert difference.startswith("returns-qa.score: the ledger says 1")
    assert record_differences(entry(verdict="fail"), record_of(e)) == [
        "verdict: the ledger says 'fail', the attestation 'pass'"
    ]


def test_regression_against_the_previous_passing_entry() -> None:
    data = entry_data()
    data["gates"]["max_regression"] = 0.05
    base = LedgerEntry.model_validate({**data, "aggregate": 0.80})
    within = LedgerEntry.model_validate({**data, "aggregate": 0.76})
    beyond = LedgerEntry.model_validate({**data, "aggregate": 0.70})
    assert regression(within, base).ok is True
    finding = regression(beyond, base)
    assert finding.ok is False and "fell by 0.1000, more than 0.05" in finding.detail
    assert regression(beyond, None).ok is None
    no_margin = LedgerEntry.model_validate(entry_data())
    assert regression(no_margin, base).ok is None


def test_recorded_thresholds_cover_every_gate() -> None:
    e = entry()
    keys = set(recorded_thresholds(e.benchmarks, e.gates))
    assert keys == {
        "returns-qa threshold",
        "refusals threshold",
        "min_score",
        "collection threshold",
        "max_regression",
    }


def test_metric_keys_are_what_mlflow_accepts() -> None:
    from evalhub.core.records import metric_key

    assert metric_key("exact_match,strip") == "exact_match/strip"
    assert metric_key("pass@k:k=1&n=1") == "pass_k:k_1_n_1"
    assert metric_key("pass_rate/encoding.DecodeMatch") == "pass_rate/encoding.DecodeMatch"
    assert metric_key("ndcg_at_10") == "ndcg_at_10"


# -- trust settings and Policies (evalhub.core.trust) -----------------------------------------


def test_every_change_to_the_trust_roots_is_named() -> None:
    ci = KeyTrust("ci", "ci.pub", "sha256:aa")
    before = TrustSettings((ci,), "allowed_signers", "d1", True)
    assert root_changes(before, before) == []
    after = TrustSettings(
        (KeyTrust("ci", "other.pub", "sha256:bb"), KeyTrust("helper", "h.pub", None)),
        "allowed_signers",
        "d2",
        False,
    )
    assert root_changes(before, after) == [
        "trusted key ci changed: ci (ci.pub, sha256:aa) → ci (other.pub, sha256:bb)",
        "trusted key helper (h.pub, unreadable) added",
        "ledger.allowed_signers changed: allowed_signers → allowed_signers",
        "ledger.require_signed_commits turned off",
    ]
    assert root_changes(before, TrustSettings()) == [
        "trusted key ci (ci.pub, sha256:aa) removed",
        "ledger.allowed_signers replaced: allowed_signers → git default",
        "ledger.require_signed_commits turned off",
    ]
    assert TrustSettings().trusts_nothing and not before.trusts_nothing


def test_policies_loosened_not_tightened() -> None:
    strict = {"promote": PolicyTerms(("quality", "safety"), ("ci",), "7d")}
    stricter = {
        "promote": PolicyTerms(("quality", "safety", "speed"), ("ci",), "1d"),
        "new": PolicyTerms(("quality",), (), None),
    }
    assert policy_loosenings(strict, stricter) == []
    looser = {"promote": PolicyTerms(("quality",), ("ci", "laptop"), None)}
    assert policy_loosenings(strict, looser) == [
        "Policy promote no longer requires safety",
        "Policy promote signed_by changed: [ci] → [ci, laptop]",
        "Policy promote max_age 7d → none",
    ]
    assert policy_loosenings(strict, {}) == ["Policy promote removed"]
    assert policy_loosenings(
        strict, {"promote": PolicyTerms(("quality", "safety"), ("ci",), "2w")}
    ) == ["Policy promote max_age 7d → 2w"]
