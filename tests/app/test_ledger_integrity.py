"""What the ledger's readers refuse (issue 12): a ledger file that says two things, a name no
one knows, trust settings changed without the previous trust root's signature, and Policies
loosened after the fact. Real git repositories, real signed results (see test_gitops)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from evalhub.core.ledger import parse
from tests.app.test_gitops import (
    POLICY,
    applied,
    audit,
    cli,
    edit,
    failures,
    gate_checks,
    git,
    ledger,
    new_repo,
    trust_failures,
)
from tests.app.test_gitops import endpoint as endpoint  # a fixture
from tests.app.test_gitops import environment as environment  # a fixture
from tests.app.test_ledger import EMAIL, SCHEMA, entry_data, head, init_repo
from tests.conftest import run_cli
from tests.project import answer, make_project


def duplicated(data: dict[str, Any], score: float) -> dict[str, Any]:
    """The entry with its first benchmark listed once more, first, scored `score`: a reader
    keyed by name keeps the genuine (later) row, a reader listing rows shows the forged one."""
    forged = dict(data["benchmarks"][0], score=score, value=score, passed=True)
    return dict(data, benchmarks=[forged, *data["benchmarks"]])


def test_duplicate_benchmark_entries_in_a_ledger_fail_gate_audit_and_show(
    tmp_path: Path, endpoint: Any
) -> None:
    url, script = endpoint
    script.answer = lambda p: "No idea." if "restocking" in p else answer(p)  # 2 of 3 right
    root = new_repo(tmp_path, url)
    applied(root)
    data = ledger(root)
    assert data["benchmarks"][0]["key"] == "returns-qa" and data["benchmarks"][0]["score"] < 1
    forged = duplicated(data, 1.0)
    (root / "results" / "quality.json").write_text(json.dumps(forged, indent=2) + "\n")
    git(root, "commit", "-q", "-am", "one more row")

    code, report = audit(root)
    assert code == 2
    assert any(
        check == "ledger" and "'returns-qa' is listed twice" in detail
        for check, detail in failures(report)
    ), report
    code, checks = gate_checks(root)
    assert code == 2 and checks["recorded"]["ok"] is False
    assert "benchmarks: benchmark 'returns-qa' is listed twice" in checks["recorded"]["detail"]
    shown = cli(root, "show", "quality")
    assert shown.code == 1 and "listed twice" in shown.output
    history = cli(root, "history", "quality", "--format", "json")  # the sound revision only
    assert history.code == 0 and len(json.loads(history.stdout)["results"]) == 1


def test_the_ledger_schema_forbids_duplicate_benchmark_entries() -> None:
    data = entry_data()
    validator = Draft202012Validator(SCHEMA)
    validator.validate(data)
    # JSON Schema can refuse an identical copy; evalhub refuses any repeated key.
    with pytest.raises(ValidationError, match="non-unique"):
        validator.validate(dict(data, benchmarks=[*data["benchmarks"], data["benchmarks"][0]]))
    assert "one entry per key" in SCHEMA["properties"]["benchmarks"]["description"]
    with pytest.raises(ValueError, match="'returns-qa' is listed twice"):
        parse(json.dumps(duplicated(data, 1.0)))


def test_history_of_an_unknown_evaluation_is_an_error(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    # Defined but not recorded yet: an empty history, not an error.
    result = cli(root, "history", "quality")
    assert result.code == 0 and "No ledger history for quality." in result.stdout
    result = cli(root, "history", "qualty")
    assert result.code == 1
    assert "no evaluation named 'qualty'" in result.output
    assert "did you mean 'quality'?" in result.output


# -- trust settings (issue 12 item 2) and Policies (item 4) ----------------------------------


def ssh_key(tmp_path: Path, name: str) -> Path:
    key = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(key)], check=True
    )
    return key


def commit_all(root: Path, message: str, signing_key: Path | None = None) -> str:
    """Commit everything; with `signing_key`, as an SSH-signed commit."""
    git(root, "add", "-A")
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key}"] if signing_key else []
    git(root, *sign, "commit", "-q", *(["-S"] if signing_key else []), "-m", message)
    return head(root)


def trusted_repo(tmp_path: Path, url: str, policy: str, maintainer: Path | None = None) -> Path:
    """A spec repository whose first commit trusts its own key as `ci`; with `maintainer`,
    whose SSH key is the allowed signer of commits."""
    root = make_project(tmp_path / "repo", url)
    (root / "evals" / "policies.yaml").write_text(policy)
    assert cli(root, "keys", "generate").code == 0
    config = "specs: [evals]\nsigning: {trusted_keys: [{name: ci, path: evalhub.pub}]}\n"
    if maintainer is not None:
        (root / "allowed_signers").write_text(
            f"{EMAIL} {maintainer.with_suffix('.pub').read_text()}"
        )
        config += "ledger: {allowed_signers: allowed_signers}\n"
    (root / "evalhub.yaml").write_text(config)
    init_repo(root)
    return root


def forge(tmp_path: Path, root: Path) -> str:
    """What a contributor without the CI key can do: sign a new result with a key of their
    own (published to the registry like any result) and write its ledger entry; returns the
    attacker's public key file. Nothing is committed yet."""
    other = tmp_path / "attacker"
    other.mkdir()
    (other / "evalhub.yaml").write_text("specs: [evals]\n")
    assert run_cli("keys", "generate", cwd=other).code == 0
    shutil.copy(other / ".evalhub" / "keys" / "evalhub.key", root / ".evalhub" / "keys")
    shutil.copy(other / "evalhub.pub", root / "attacker.pub")
    edit(root, "evaluations.yaml", "params: {seed: 1}", "params: {seed: 2}", "new seed")
    assert cli(root, "apply", "--yes").code == 0
    return "attacker.pub"


def policy(extra: str = "") -> str:
    return POLICY.replace("max_age: 30d", f"max_age: 30d{extra}")


def test_two_trusted_keys_with_the_same_name_are_refused(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = trusted_repo(tmp_path, url, policy("\n  signed_by: [ci]"))
    applied(root)
    forge(tmp_path, root)
    # A second key named ci, in the same commit as the forged result.
    config = root / "evalhub.yaml"
    config.write_text(
        config.read_text().replace(
            "[{name: ci, path: evalhub.pub}]",
            "[{name: ci, path: evalhub.pub}, {name: ci, path: attacker.pub}]",
        )
    )
    commit_all(root, "evalhub: record quality")
    forged = ledger(root)["publication"]["result"]
    for command in (["verify", forged], ["gate"], ["audit"]):
        result = cli(root, *command)
        assert result.code == 1, (command, result.output)
        assert (
            "evalhub.yaml:2:" in result.output and "signing.trusted_keys[1].name" in result.output
        )
        assert "trusted key names must be unique" in result.output


def test_a_key_trusted_in_the_same_commit_as_a_forged_result_fails_audit(
    tmp_path: Path, endpoint: Any
) -> None:
    url, _ = endpoint
    maintainer = ssh_key(tmp_path, "maintainer")
    root = trusted_repo(tmp_path, url, policy(), maintainer)
    pinned = root / "evals" / "pinned.yaml"
    key_id = json.loads(cli(root, "keys", "list", "--format", "json").stdout)["keys"][0]["key_id"]
    pinned.write_text(
        policy(f"\n  signed_by: ['{key_id}']").replace("name: promote", "name: pinned")
    )
    commit_all(root, "a Policy pinning the CI key's id", maintainer)
    applied(root)
    assert audit(root)[0] == 0
    forge(tmp_path, root)
    config = root / "evalhub.yaml"
    config.write_text(
        config.read_text().replace(
            "[{name: ci, path: evalhub.pub}]",
            "[{name: ci, path: evalhub.pub}, {name: helper, path: attacker.pub}]",
        )
    )
    # The attacker also lists their own SSH key as an allowed signer, and signs with it.
    attacker_ssh = ssh_key(tmp_path, "attacker_ssh")
    signers = root / "allowed_signers"
    signers.write_text(
        signers.read_text() + f"{EMAIL} {attacker_ssh.with_suffix('.pub').read_text()}"
    )
    forged_commit = commit_all(root, "evalhub: record quality", attacker_ssh)

    # The working tree trusts the new key: verify (and a Policy that pins no key) accept it.
    assert cli(root, "verify", ledger(root)["publication"]["result"]).code == 0
    result = cli(root, "gate", "--format", "json")
    verdicts = {p["policy"]: p["ok"] for p in json.loads(result.stdout)["policies"]}
    assert verdicts == {"promote": True, "pinned": False}  # pinning the key id holds
    # Audit: every revision verifies with the keys of its time, and the trust change is
    # flagged, the new allowed signer not counting for the commit that adds it.
    code, report = audit(root)
    assert code == 2 and failures(report) == []
    (change,) = trust_failures(report)
    assert change.startswith(
        f"trust settings changed in {forged_commit[:12]} without a signature by the previous "
        "trust root"
    )
    assert "trusted key helper (attacker.pub" in change and "allowed_signers changed" in change
    assert "Audit FAILED" in cli(root, "audit").stdout


def test_old_revisions_are_verified_with_the_keys_trusted_at_that_revision(
    tmp_path: Path, endpoint: Any
) -> None:
    url, _ = endpoint
    maintainer = ssh_key(tmp_path, "maintainer")
    root = trusted_repo(tmp_path, url, policy(), maintainer)
    applied(root)
    # The key is rotated: a new CI key replaces the old one, in a commit the maintainer signs.
    other = tmp_path / "rotated"
    other.mkdir()
    (other / "evalhub.yaml").write_text("specs: [evals]\n")
    assert run_cli("keys", "generate", cwd=other).code == 0
    shutil.copy(other / "evalhub.pub", root / "ci-2027.pub")
    config = root / "evalhub.yaml"
    config.write_text(config.read_text().replace("path: evalhub.pub", "path: ci-2027.pub"))
    rotation = commit_all(root, "rotate the CI key", maintainer)

    code, report = audit(root)
    assert code == 0, (failures(report), report["trust"])
    (accepted,) = report["trust"]
    assert accepted["ok"] is True and accepted["commit"] == rotation
    assert "signed by the previous trust root" in accepted["detail"]
    assert "trusted key ci changed" in accepted["detail"]
    # Today's keys alone do not verify the old result: --key names them for every revision.
    code, report = audit(root, "--key", str(root / "ci-2027.pub"))
    assert code == 2 and any(c == "attestation" for c, _ in failures(report))


def test_a_policy_losing_a_required_evaluation_fails_audit(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    evaluations = root / "evals" / "evaluations.yaml"
    second = evaluations.read_text().replace("name: quality", "name: quality-b")
    evaluations.write_text(evaluations.read_text() + "---\n" + second)
    policies = root / "evals" / "policies.yaml"
    policies.write_text(POLICY.replace("require: [quality]", "require: [quality, quality-b]"))
    commit_all(root, "require quality-b too")  # stricter: not a finding
    code, report = audit(root)
    assert code == 0 and not report.get("trust")

    policies.write_text(POLICY.replace("max_age: 30d", "max_age: 90d"))
    loosened = commit_all(root, "promote on quality alone")
    code, report = audit(root)
    assert code == 2
    (finding,) = trust_failures(report)
    assert finding.startswith(f"trust settings changed in {loosened[:12]} without a signature")
    assert "Policy promote no longer requires quality-b" in finding
    assert "Policy promote max_age 30d → 90d" in finding
    text = cli(root, "audit").stdout
    assert "Audit FAILED: no ledger revisions; 1 change to the trust settings or Policies" in text


def test_a_policy_pins_a_trusted_key_by_name_and_id(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = trusted_repo(tmp_path, url, policy("\n  signed_by: [ci]"))
    key_id = json.loads(cli(root, "keys", "list", "--format", "json").stdout)["keys"][0]["key_id"]
    pinned = root / "evals" / "pinned.yaml"
    pin = f"\n  signed_by: [{{name: ci, key_id: '{key_id}'}}]"
    pinned.write_text(policy(pin).replace("name: promote", "name: pinned"))
    commit_all(root, "a Policy pinning ci's key id")  # a new Policy is stricter: no finding
    applied(root)
    result = cli(root, "gate", "--format", "json")
    assert result.code == 0, result.stdout
    # The name ci re-pointed at another key, in the same commit as a result that key signed.
    forge(tmp_path, root)
    config = root / "evalhub.yaml"
    config.write_text(config.read_text().replace("path: evalhub.pub", "path: attacker.pub"))
    forged_commit = commit_all(root, "evalhub: record quality")
    result = cli(root, "gate", "--format", "json")
    policies = {p["policy"]: p for p in json.loads(result.stdout)["policies"]}
    assert result.code == 2 and policies["promote"]["ok"] is True  # a bare name moves
    (row,) = policies["pinned"]["evaluations"]
    verified = {c["check"]: c for c in row["checks"]}["verified"]
    assert verified["ok"] is False and f"accepts only ci ({key_id})" in verified["detail"]
    code, report = audit(root)
    assert code == 2
    (change,) = trust_failures(report)
    assert change.startswith(f"trust settings changed in {forged_commit[:12]}")
    assert "trusted key ci changed: ci (evalhub.pub" in change

    # The pin is checked as written: a malformed id, an unknown name.
    malformed = policy("\n  signed_by: [{name: ci, key_id: 'sha256:12'}]")
    pinned.write_text(malformed.replace("name: promote", "name: pinned"))
    result = cli(root, "validate")
    assert result.code == 1
    assert "pinned.yaml:8:34:" in result.output and "spec.signed_by[0].key_id" in result.output
    unknown = policy(pin.replace("name: ci", "name: cj"))
    pinned.write_text(unknown.replace("name: promote", "name: pinned"))
    result = cli(root, "validate")
    assert result.code == 1 and "spec.signed_by[0].name" in result.output
    assert "trusted keys (evalhub.yaml signing): ci" in result.output
