"""The GitOps loop on real git repositories: `apply --commit` records results in the ledger,
`evalhub audit` checks every revision of it, `evalhub gate` decides promotion, `history` and
`show` read it back. Every tamper case is made for real — a hand-edited ledger commit, a spec
commit that does not exist, a stale spec, a loosened threshold, an untrusted signer, an unsigned
commit where signing is required, an attestation gone from the store — and must be caught with
its reason. The model is a scripted endpoint (the builtin evaluator); results are signed and
published to the project's OCI layout."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evalhub.app.gate import gate
from evalhub.app.project import load_project
from evalhub.core.ledger import parse, render
from tests.app.test_ledger import EMAIL, commits, git, head, init_repo
from tests.conftest import Result, run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project

POLICY = """apiVersion: evalhub.dev/v1
kind: Policy
metadata: {name: promote}
spec:
  model: assistant
  require: [quality]
  max_age: 30d
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", "sk-evalhub-test-" + "g" * 24)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("EVALHUB_LEDGER_SIGNING_KEY", raising=False)


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Script]]:
    with fake_openai(Script(answer=answer)) as served:
        yield served


def cli(root: Path, *args: str) -> Result:
    result = run_cli(*args, cwd=root, timeout=300)
    assert "Traceback" not in result.output, result.output
    return result


def new_repo(tmp_path: Path, url: str) -> Path:
    root = make_project(tmp_path / "repo", url)
    (root / "evals" / "policies.yaml").write_text(POLICY)
    assert cli(root, "keys", "generate").code == 0
    init_repo(root)
    return root


def applied(root: Path, *args: str) -> Result:
    result = cli(root, "apply", "--yes", "--commit", *args)
    assert result.code == 0, result.output
    return result


def edit(root: Path, name: str, old: str, new: str, message: str) -> None:
    path = root / "evals" / name
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new, 1))
    git(root, "commit", "-q", "-am", message)


def ledger(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "results" / "quality.json").read_text())
    return data


def commit_ledger(root: Path, data: dict[str, Any], message: str) -> None:
    (root / "results" / "quality.json").write_text(render(parse(json.dumps(data))))
    git(root, "commit", "-q", "-am", message)


def audit(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(root, "audit", "--format", "json", *args)
    assert result.code in (0, 2), result.output
    return result.code, json.loads(result.stdout)


def failures(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(check, detail) of every failed finding of an audit report."""
    return [
        (c["check"], c["detail"])
        for r in report["revisions"]
        for c in r["checks"]
        if c["ok"] is False
    ]


def trust_failures(report: dict[str, Any]) -> list[str]:
    """The details of every failed finding about a change of the trust settings or Policies."""
    return [t["detail"] for t in report["trust"] if t["ok"] is False]


def gate_checks(root: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli(root, "gate", "--format", "json", *args)
    assert result.code in (0, 2), result.output
    report = json.loads(result.stdout)
    checks = {
        c["check"]: c for p in report["policies"] for e in p["evaluations"] for c in e["checks"]
    }
    return result.code, checks


# -- the happy path ----------------------------------------------------------------------------


def test_apply_commit_then_audit_history_show_and_gate(tmp_path: Path, endpoint: Any) -> None:
    url, script = endpoint
    root = new_repo(tmp_path, url)
    first = applied(root)
    assert "committed" in first.output.lower() or commits(root) == 2
    assert commits(root) == 2
    # A rescore (weight change) and a re-run (params change): three ledger revisions.
    edit(root, "collections.yaml", "weight: 2", "weight: 3", "reweigh returns-qa")
    applied(root)
    edit(root, "evaluations.yaml", "params: {seed: 1}", "params: {seed: 2}", "new seed")
    applied(root)
    assert script.generations == 10  # the rescore made no model call
    assert len(git(root, "log", "--format=%H", "--", "results/quality.json").split()) == 3

    code, report = audit(root)
    assert code == 0, report
    assert report["ok"] is True and len(report["revisions"]) == 3
    for revision in report["revisions"]:
        checks = {c["check"]: c for c in revision["checks"]}
        assert checks["fingerprint"]["ok"] is True, checks
        assert (
            checks["attestation"]["ok"] is True and "signed by" in checks["attestation"]["detail"]
        )
        assert checks["scores"]["ok"] is True
        assert checks["thresholds"]["ok"] is True
        assert checks["signature"]["ok"] is None  # not required here
    text = cli(root, "audit")
    assert text.code == 0 and "Audit passed: all 3 ledger revisions hold." in text.stdout
    markdown = cli(root, "audit", "--format", "markdown")
    assert markdown.stdout.startswith("### evalhub audit") and "✅" in markdown.stdout
    code, recent = audit(root, "--since", "HEAD~2")
    assert code == 0 and len(recent["revisions"]) == 1

    history = cli(root, "history", "quality", "--format", "json")
    assert history.code == 0
    results = json.loads(history.stdout)["results"]
    assert len(results) == 3 and {r["model_revision"] for r in results} == {"v1"}
    assert all(r["result"] and r["mlflow"]["run_id"] for r in results)
    assert [r["commit"] for r in results] == git(
        root, "log", "--reverse", "--format=%H", "--", "results/quality.json"
    ).split()
    text = cli(root, "history", "quality").stdout
    assert "3 recorded results" in text and "v1: 3 results" in text

    shown = cli(root, "show", "quality")
    assert shown.code == 0
    assert "quality: PASS" in shown.stdout and "returns-qa" in shown.stdout
    assert head(root)[:12] in shown.stdout  # the ledger commit holding this entry
    shown_md = cli(root, "show", "quality", "--format", "markdown")
    assert shown_md.code == 0 and shown_md.stdout.startswith("### `quality`: PASS, aggregate ")
    entry = json.loads((root / "results" / "quality.json").read_text())
    rows = [line for line in shown_md.stdout.splitlines() if line.startswith("| `")]
    assert sorted(r.split("`")[1] for r in rows) == sorted(b["key"] for b in entry["benchmarks"])
    assert entry["publication"]["result"] in shown_md.stdout and head(root)[:12] in shown_md.stdout

    code, checks = gate_checks(root)
    assert code == 0, checks
    assert all(checks[c]["ok"] is True for c in ("recorded", "fresh", "verified", "passing", "age"))
    assert checks["regression"]["ok"] is None  # the evaluation sets no max_regression
    md = cli(root, "gate", "--format", "markdown")
    assert md.code == 0 and md.stdout.startswith("### evalhub gate: ✅ pass")
    assert cli(root, "gate", "--model", "assistant").code == 0


def test_gate_exit_codes_and_errors(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    # Nothing recorded yet: the gate fails (2) and says why.
    result = cli(root, "gate")
    assert result.code == 2 and "no ledger entry for 'quality'" in result.stdout
    # Errors are exit 1, with a hint, never a traceback.
    result = cli(root, "gate", "--policy", "promot")
    assert result.code == 1 and "no Policy named 'promot'" in result.output
    assert "did you mean 'promote'" in result.output
    assert cli(root, "gate", "--model", "nobody").code == 1
    assert cli(root, "audit", "--since", "no-such-rev").code == 1
    (root / "evals" / "policies.yaml").unlink()
    result = cli(root, "gate")
    assert result.code == 1 and "no Policy" in result.output


def test_max_age_and_regression(tmp_path: Path, endpoint: Any) -> None:
    url, script = endpoint
    root = new_repo(tmp_path, url)
    edit(
        root,
        "evaluations.yaml",
        "gates: {min_score: 0.1}",
        "gates: {min_score: 0.1, max_regression: 0.05}",
        "margin",
    )
    applied(root)
    project = load_project(root)
    later = datetime.now(UTC) + timedelta(days=31)
    report = gate(project, now=later)
    (row,) = report.policies[0].rows
    age = next(f for f in row.findings if f.check == "age")
    assert age.ok is False and "older than 30d" in age.detail
    assert gate(project, now=datetime.now(UTC)).ok

    # The model gets worse: the re-run's aggregate falls by more than max_regression.
    script.answer = lambda prompt: "I'm sorry, but I can't share that."  # refuses everything
    edit(root, "evaluations.yaml", "params: {seed: 1}", "params: {seed: 3}", "new seed")
    cli(root, "apply", "--yes", "--commit")
    code, checks = gate_checks(root)
    assert code == 2
    assert checks["regression"]["ok"] is False and "fell by" in checks["regression"]["detail"]
    assert checks["passing"]["ok"] is False


# -- tamper cases ------------------------------------------------------------------------------


def test_a_hand_edited_ledger_fails_audit_and_gate(tmp_path: Path, endpoint: Any) -> None:
    url, script = endpoint
    script.answer = lambda p: "No idea." if "restocking" in p else answer(p)  # 2 of 3 right
    root = new_repo(tmp_path, url)
    applied(root)
    data = ledger(root)
    assert data["benchmarks"][0]["score"] < 1 and data["aggregate"] < 1
    data["benchmarks"][0]["score"] = 1.0
    data["benchmarks"][0]["value"] = 1.0
    data["aggregate"] = 1.0
    commit_ledger(root, data, "polish the numbers")
    code, report = audit(root)
    assert code == 2
    (bad,) = [r for r in report["revisions"] if not r["ok"]]
    assert bad["commit"] == head(root)
    assert any(c == "scores" and "aggregate: the ledger says 1" in d for c, d in failures(report))
    code, checks = gate_checks(root)
    assert code == 2 and "does not match the attested result" in checks["verified"]["detail"]
    assert "Audit FAILED: 1 of 2" in cli(root, "audit").stdout


def test_a_spec_commit_that_does_not_exist(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    data = ledger(root)
    data["spec_commit"] = "f" * 40
    commit_ledger(root, data, "point elsewhere")
    code, report = audit(root)
    assert code == 2
    found = failures(report)
    assert ("fingerprint", f"spec commit {'f' * 12} does not exist in this repository") in found
    assert any(c == "scores" and "spec_commit" in d for c, d in found)


def test_a_spec_changed_without_a_rerun_is_stale(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    edit(root, "providers.yaml", "scorer: contains}", "scorer: exact_match}", "stricter scorer")
    code, checks = gate_checks(root)
    assert code == 2
    assert checks["fresh"]["ok"] is False
    assert (
        "stale" in checks["fresh"]["detail"] and "returns-qa changed" in checks["fresh"]["detail"]
    )
    result = cli(root, "gate")
    assert result.code == 2 and "run `evalhub apply`" in result.stdout
    # The recorded history itself is still sound.
    assert audit(root)[0] == 0


def test_a_threshold_lowered_after_the_result_is_flagged(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    edit(root, "evaluations.yaml", "gates: {min_score: 0.1}", "gates: {min_score: 0.5}", "strict")
    applied(root)
    assert audit(root)[0] == 0
    edit(root, "evaluations.yaml", "min_score: 0.5", "min_score: 0.2", "relax")
    code, report = audit(root)
    assert code == 2
    (finding,) = [d for c, d in failures(report) if c == "thresholds"]
    assert "min_score lowered 0.5 → 0.2" in finding and "specs at HEAD" in finding
    # Re-running with the looser threshold records it, and the earlier result is still flagged.
    applied(root)
    code, report = audit(root)
    assert code == 2
    (finding,) = [d for c, d in failures(report) if c == "thresholds"]
    assert "by the next result" in finding


def test_signatures_from_untrusted_keys(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    # evalhub.yaml now trusts only another key: the recorded result's signer is untrusted.
    other = tmp_path / "other"
    other.mkdir()
    (other / "evalhub.yaml").write_text("specs: [evals]\n")
    assert run_cli("keys", "generate", cwd=other).code == 0
    shutil.copy(other / "evalhub.pub", root / "ci.pub")
    config = root / "evalhub.yaml"
    config.write_text(config.read_text() + "signing: {trusted_keys: [{name: ci, path: ci.pub}]}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "trust only ci")
    code, checks = gate_checks(root)
    assert code == 2 and checks["verified"]["ok"] is False
    assert "trusted" in checks["verified"]["detail"] or "signed" in checks["verified"]["detail"]
    # Audit verifies the result with the keys trusted when it was recorded: it holds; the
    # unsigned change of the trust settings is what fails.
    code, report = audit(root)
    assert code == 2 and failures(report) == []
    (change,) = trust_failures(report)
    assert "trust settings changed in" in change and "trusted key ci (ci.pub" in change

    # Trusted, but not a signer the policy accepts.
    config.write_text(
        config.read_text().replace(
            "[{name: ci, path: ci.pub}]",
            "[{name: ci, path: ci.pub}, {name: laptop, path: evalhub.pub}]",
        )
    )
    policy = root / "evals" / "policies.yaml"
    policy.write_text(POLICY.replace("max_age: 30d", "max_age: 30d\n  signed_by: [ci]"))
    git(root, "commit", "-q", "-am", "only ci may promote")
    code, checks = gate_checks(root)
    assert code == 2
    assert "signed by laptop" in checks["verified"]["detail"]
    assert "accepts only ci" in checks["verified"]["detail"]
    code, report = audit(root)  # audit trusts any trusted key; the trust changes still fail it
    assert code == 2 and failures(report) == [] and len(trust_failures(report)) == 2


def test_unsigned_commits_where_signing_is_required(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    key = tmp_path / "ledger_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(key)], check=True
    )
    (root / "allowed_signers").write_text(f"{EMAIL} {Path(str(key) + '.pub').read_text()}")
    config = root / "evalhub.yaml"
    config.write_text(
        config.read_text()
        + "ledger: {require_signed_commits: true, allowed_signers: allowed_signers}\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "require signed ledger commits")
    applied(root)  # not signed
    code, report = audit(root)
    assert code == 2
    assert any(c == "signature" and "not signed" in d for c, d in failures(report))

    # Signed by an allowed signer: holds.
    edit(root, "collections.yaml", "weight: 2", "weight: 3", "reweigh")
    applied(root, "--sign", "--signing-key", str(key))
    code, report = audit(root)
    last = report["revisions"][-1]
    assert last["ok"] is True, last
    assert {c["check"]: c["ok"] for c in last["checks"]}["signature"] is True

    # Signed, but by a key the allowed-signers file does not list.
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(stranger)],
        check=True,
    )
    edit(root, "collections.yaml", "weight: 3", "weight: 4", "reweigh again")
    applied(root, "--sign", "--signing-key", str(stranger))
    code, report = audit(root)
    assert code == 2
    assert not report["revisions"][-1]["ok"]
    detail = {c["check"]: c for c in report["revisions"][-1]["checks"]}["signature"]["detail"]
    assert "not signed" not in detail


def test_an_attestation_missing_from_the_store(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    data = ledger(root)
    digest = data["publication"]["attestation_digest"]
    blob = root / ".evalhub" / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")
    assert blob.is_file()
    blob.unlink()
    code, report = audit(root)
    assert code == 2
    assert any(c == "attestation" for c, _ in failures(report)), report
    code, checks = gate_checks(root)
    assert code == 2 and checks["verified"]["ok"] is False
    assert checks["passing"]["ok"] is None  # nothing verified to judge


def test_ledger_commits_carry_skip_ci_on_request(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root, "--skip-ci")
    message = git(root, "log", "-1", "--format=%B")
    assert message.splitlines()[0].startswith("evalhub: record quality pass ")
    assert "[skip ci]" in message
    # The trailers are still the last paragraph.
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True
    ).stdout
    assert "Evalhub-Fingerprint:" in parsed
    assert cli(root, "apply", "--yes", "--skip-ci").code == 1  # needs --commit


def test_push_rebases_onto_a_remote_that_moved(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    # Someone else pushes to main while this apply runs.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(remote), str(other))
    git(other, "config", "user.name", "Other")
    git(other, "config", "user.email", "other@example.com")
    (other / "NOTES.md").write_text("meanwhile\n")
    git(other, "add", "NOTES.md")
    git(other, "commit", "-q", "-m", "meanwhile")
    git(other, "push", "-q", "origin", "main")

    result = applied(root, "--push")
    assert "pushed main" in result.output
    log = git(remote, "log", "--format=%s", "main").splitlines()
    assert log[0].startswith("evalhub: record quality pass") and log[1] == "meanwhile"
    assert git(remote, "rev-parse", "main").strip() == head(root)
    assert audit(root)[0] == 0  # the rebased ledger commit still audits

    # The same ledger file changed on both sides: refused, the local commit kept, said so.
    edit(root, "collections.yaml", "weight: 2", "weight: 3", "reweigh")
    git(other, "pull", "-q", "--rebase", "origin", "main")
    (other / "results" / "quality.json").write_text("{}\n")
    git(other, "commit", "-q", "-am", "clobber the ledger")
    git(other, "push", "-q", "origin", "main")
    result = cli(root, "apply", "--yes", "--commit", "--push")
    assert result.code == 1
    assert "could not be rebased" in result.output
    assert git(root, "log", "-1", "--format=%s").startswith("evalhub: record quality")
    assert git(root, "status", "--porcelain").strip() == ""  # the rebase was undone
