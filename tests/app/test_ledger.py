"""The results ledger: deterministic files, and `apply --commit [--sign] [--push]` on real git
repositories — exactly the ledger files committed with a structured message, nothing committed
(and nothing run) when the specs are dirty, SSH-signed commits that `git verify-commit` accepts."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from evalhub.core.ledger import (
    LedgerEntry,
    commit_message,
    ledger_path,
    parse,
    parse_trailers,
    render,
)
from tests.conftest import REPO, run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project

SECRET = "sk-evalhub-test-" + "z" * 24
EMAIL = "ledger@example.com"
SCHEMA = json.loads((REPO / "schemas" / "ledger.json").read_text())


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)
    # The user's git configuration (signing, hooks, templates) must not leak into the tests.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("EVALHUB_LEDGER_SIGNING_KEY", raising=False)


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def init_repo(root: Path) -> str:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ledger Test")
    git(root, "config", "user.email", EMAIL)
    git(root, "config", "commit.gpgsign", "false")
    (root / ".gitignore").write_text(".evalhub/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "specs")
    return head(root)


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def commits(root: Path) -> int:
    return int(git(root, "rev-list", "--count", "HEAD").strip())


def apply(root: Path, *args: str) -> tuple[int, str]:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=300)
    assert "Traceback" not in result.output, result.stderr
    return result.code, result.stdout + "\n\n" + result.stderr


def trailers(root: Path, rev: str = "HEAD") -> list[tuple[str, str]]:
    message = git(root, "log", "-1", "--format=%B", rev)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [tuple(line.split(": ", 1)) for line in parsed.splitlines()]  # type: ignore[misc]


def committed_files(root: Path, rev: str = "HEAD") -> list[str]:
    return git(root, "show", "--name-only", "--format=", rev).split()


# -- the format (pure) ------------------------------------------------------------------------


def entry_data(name: str = "quality", published: bool = True) -> dict[str, Any]:
    return {
        "format_version": 1,
        "evaluation": name,
        "fingerprint": "ab" * 32,
        "fingerprint_version": 1,
        "spec_commit": "c0" * 20,
        "spec_files": ["evals/evaluations.yaml"],
        "model": "assistant",
        "model_identity": {"type": "endpoint", "revision": "v1", "nested": {"b": 1, "a": [2, 1]}},
        "collection": "quality@1",
        "benchmarks": [
            {
                "key": "returns-qa",
                "unit_fingerprint": "cd" * 32,
                "metric": "contains",
                "value": 2 / 3,
                "score": 2 / 3,
                "weight": 2.0,
                "threshold": None,
                "passed": True,
            },
            {
                "key": "refusals",
                "unit_fingerprint": "ef" * 32,
                "metric": "refusal",
                "value": 1.0,
                "score": 1.0,
                "weight": 1.0,
                "threshold": 0.5,
                "passed": True,
            },
        ],
        "aggregate": 0.7777777777777778,
        "gates": {
            "min_score": 0.1,
            "max_regression": None,
            "collection_threshold": None,
            "benchmarks": {"refusals": 0.5},
        },
        "verdict": "pass",
        "reasons": [],
        "mlflow": {
            "tracking_uri": "sqlite:///x/.evalhub/mlflow.db",
            "run_id": "r" * 32,
            "unit_runs": {"returns-qa": "u1", "refusals": "u2"},
        },
        "publication": {
            "result": "oci-layout:.evalhub/oci:quality-abab@sha256:" + "1" * 64,
            "attestation_digest": "sha256:" + "2" * 64,
            "signer_key_id": "sha256:" + "3" * 64,
        }
        if published
        else {"result": None, "attestation_digest": None, "signer_key_id": None},
        "evalhub_version": "0.1.0",
        "time": "2026-01-02T03:04:05+00:00",
    }


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    return value


def test_rendering_is_deterministic_sorted_and_stable() -> None:
    data = entry_data()
    text = render(LedgerEntry.model_validate(data))
    rng = random.Random(7)
    for _ in range(5):
        assert render(LedgerEntry.model_validate(shuffled(data, rng))) == text  # same bytes
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert '\n  "aggregate": 0.7777777777777778,\n' in text  # 2-space indent, repr floats
    assert '"weight": 1.0' in text  # a float stays a float
    keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert keys == sorted(keys)
    assert json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n" == text
    assert parse(text) == LedgerEntry.model_validate(data)
    Draft202012Validator(SCHEMA).validate(json.loads(text))
    Draft202012Validator(SCHEMA).validate(json.loads(render(parse(text))))


def test_a_changed_score_changes_few_lines() -> None:
    before = render(LedgerEntry.model_validate(entry_data()))
    data = entry_data()
    data["aggregate"] = 0.5
    after = render(LedgerEntry.model_validate(data))
    changed = [a for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == ['  "aggregate": 0.7777777777777778,']


def test_ledger_path() -> None:
    assert ledger_path("results", "quality") == "results/quality.json"
    assert ledger_path("results/", "quality") == "results/quality.json"
    assert ledger_path("audit/results", "a-b") == "audit/results/a-b.json"


def test_commit_messages_single_and_several() -> None:
    one = LedgerEntry.model_validate(entry_data())
    message = commit_message([one])
    assert message.splitlines()[0] == f"evalhub: record quality pass {'ab' * 6}"
    assert message.splitlines()[1] == ""
    assert parse_trailers(message) == [
        {
            "Evalhub-Evaluation": "quality",
            "Evalhub-Fingerprint": "ab" * 32,
            "Evalhub-Verdict": "pass",
            "Evalhub-Result": one.publication.result,
            "Evalhub-Spec-Commit": "c0" * 20,
        }
    ]
    other = LedgerEntry.model_validate(entry_data("a-first", published=False))
    several = commit_message([one, other])
    assert several.splitlines()[0] == "evalhub: record 2 results"
    groups = parse_trailers(several)
    assert [g["Evalhub-Evaluation"] for g in groups] == ["a-first", "quality"]
    assert "Evalhub-Result" not in groups[0]  # not published: no result trailer
    # git itself reads every line of the last paragraph as a trailer
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=several,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert parsed == several.split("\n\n", 1)[1]


# -- apply --commit on real repositories ------------------------------------------------------


def test_apply_commit_records_exactly_the_ledger_files(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        assert run_cli("keys", "generate", cwd=root).code == 0
        spec_commit = init_repo(root)
        # Unrelated work in progress outside the specs stays out of the ledger commit.
        (root / "notes.txt").write_text("draft\n")
        (root / "staged.txt").write_text("staged\n")
        git(root, "add", "staged.txt")

        code, output = apply(root, "--commit")
        assert code == 0, output
        assert script.generations == 5
        assert commits(root) == 2
        assert committed_files(root) == ["results/quality.json"]
        status = git(root, "status", "--porcelain")
        assert "A  staged.txt" in status and "?? notes.txt" in status

        entry = parse((root / "results" / "quality.json").read_text())
        message = git(root, "log", "-1", "--format=%B")
        assert message.splitlines()[0] == (f"evalhub: record quality pass {entry.fingerprint[:12]}")
        published = next(
            line.removeprefix("published quality: ")
            for line in output.splitlines()
            if line.startswith("published quality: ")
        )
        assert trailers(root) == [
            ("Evalhub-Evaluation", "quality"),
            ("Evalhub-Fingerprint", entry.fingerprint),
            ("Evalhub-Verdict", "pass"),
            ("Evalhub-Result", published),
            ("Evalhub-Spec-Commit", spec_commit),
        ]
        # The file names what the issue asks for, and validates against schemas/ledger.json.
        data = json.loads(git(root, "show", "HEAD:results/quality.json"))
        Draft202012Validator(SCHEMA).validate(data)
        assert entry.spec_commit == spec_commit
        assert entry.spec_files == ["evals/evaluations.yaml"]
        assert entry.collection == "quality@1" and entry.verdict == "pass"
        assert {b.key for b in entry.benchmarks} == {"returns-qa", "refusals"}
        assert entry.publication.result == published
        assert entry.publication.attestation_digest, entry
        assert entry.publication.signer_key_id
        assert entry.mlflow.run_id and all(entry.mlflow.unit_runs.values())
        assert entry.mlflow.tracking_uri and "@" not in entry.mlflow.tracking_uri
        assert render(entry) == (root / "results" / "quality.json").read_text()
        assert SECRET not in (root / "results" / "quality.json").read_text()

        # Nothing to do: nothing runs, nothing is committed.
        before = head(root)
        code, output = apply(root, "--commit")
        assert code == 0 and "No changes." in output, output
        assert head(root) == before and script.generations == 5


def test_a_dirty_spec_tree_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        init_repo(root)
        evaluations = root / "evals" / "evaluations.yaml"
        evaluations.write_text(evaluations.read_text().replace("min_score: 0.1", "min_score: 0.2"))
        code, output = apply(root, "--commit")
        assert code == 1
        assert "uncommitted changes in evals" in output and "nothing was run" in output
        assert script.requests == []  # not even the endpoint's model list
        assert commits(root) == 1 and not (root / "results").exists()
        assert not (root / ".evalhub" / "mlflow.db").exists()

        # An untracked spec file counts too, and so does a staged, uncommitted change.
        git(root, "checkout", "--", "evals")
        (root / "evals" / "extra.yaml").write_text("# new\n")
        assert apply(root, "--commit")[0] == 1
        (root / "evals" / "extra.yaml").unlink()
        evaluations.write_text(evaluations.read_text() + "\n")
        git(root, "add", "evals")
        assert apply(root, "--commit")[0] == 1
        assert script.requests == [] and commits(root) == 1


def test_commit_outside_a_git_repository_is_refused(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "plain", url)
        code, output = apply(root, "--commit")
        assert code == 1 and "needs a git repository" in output
        assert script.requests == []
        code, output = apply(root, "--sign")
        assert code == 1 and "add --commit" in output


def test_without_commit_the_ledger_is_written_not_committed(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path / "repo", url)
        init_repo(root)
        code, output = apply(root)
        assert code == 0, output
        assert "ledger quality: results/quality.json" in output
        assert commits(root) == 1
        entry = parse((root / "results" / "quality.json").read_text())
        assert entry.publication.result is None  # no signing key: not published
        assert entry.publication.signer_key_id is None


def test_one_commit_records_several_evaluations_and_pushes(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        evaluations = root / "evals" / "evaluations.yaml"
        evaluations.write_text(
            evaluations.read_text()
            + "---\n"
            + evaluations.read_text()
            .replace("name: quality}", "name: quality-strict}")
            .replace("min_score: 0.1", "min_score: 0.99")
        )
        init_repo(root)
        remote = tmp_path / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
        git(root, "remote", "add", "origin", str(remote))

        code, output = apply(root, "--commit", "--push")
        assert code == 0, output
        assert script.generations == 5  # identical units run once for both
        assert committed_files(root) == ["results/quality-strict.json", "results/quality.json"]
        assert git(root, "log", "-1", "--format=%s") == "evalhub: record 2 results\n"
        groups = parse_trailers(git(root, "log", "-1", "--format=%B"))
        assert [g["Evalhub-Evaluation"] for g in groups] == ["quality", "quality-strict"]
        spec_commit = git(root, "rev-parse", "HEAD~1").strip()
        assert all(g["Evalhub-Spec-Commit"] == spec_commit for g in groups)
        assert git(remote, "rev-parse", "main").strip() == head(root)
        assert "pushed main" in output


def test_signed_ledger_commits_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "ledger_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(key)], check=True
    )
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"{EMAIL} {Path(str(key) + '.pub').read_text().strip()}\n")

    def verify(root: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("git", "-C", str(root), "-c", f"gpg.ssh.allowedSignersFile={allowed}"),
                *("verify-commit", "HEAD"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path / "repo", url)
        init_repo(root)
        assert verify(root).returncode != 0  # the specs commit is not signed

        code, output = apply(root, "--commit", "--sign", "--signing-key", str(key))
        assert code == 0, output
        assert "signed commit" in output
        checked = verify(root)
        assert checked.returncode == 0, checked.stderr
        assert f'Good "git" signature for {EMAIL}' in checked.stderr

        # ledger.sign_commits makes signing the default; the key may come from the environment.
        (root / "evalhub.yaml").write_text(
            (root / "evalhub.yaml").read_text() + "ledger: {sign_commits: true}\n"
        )
        collections = root / "evals" / "collections.yaml"
        collections.write_text(collections.read_text().replace("weight: 2", "weight: 1"))
        git(root, "commit", "-q", "-am", "reweigh")
        monkeypatch.setenv("EVALHUB_LEDGER_SIGNING_KEY", str(key))
        code, output = apply(root, "--commit")
        assert code == 0, output
        assert committed_files(root) == ["results/quality.json"]
        checked = verify(root)
        assert checked.returncode == 0, checked.stderr

        # A missing key is refused before anything runs.
        collections.write_text(collections.read_text().replace("weight: 1", "weight: 3", 1))
        git(root, "commit", "-q", "-am", "reweigh again")
        before = head(root)
        code, output = apply(root, "--commit", "--signing-key", str(tmp_path / "nope"))
        assert code == 1 and "does not exist" in output
        assert head(root) == before


def test_a_ledger_written_but_not_committed_is_committed_by_the_next_apply(
    tmp_path: Path,
) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        assert run_cli("keys", "generate", cwd=root).code == 0
        init_repo(root)
        hook = root / ".git" / "hooks" / "pre-commit"
        hook.write_text("#!/bin/sh\necho 'results/ needs a second reviewer' >&2\nexit 1\n")
        hook.chmod(0o755)

        code, output = apply(root, "--commit")
        assert code == 1
        assert "results/ needs a second reviewer" in output
        assert "pre-commit hook refused the commit" in output
        assert "the next `evalhub apply --commit` commits them" in output
        assert "user.name" not in output  # the identity is not what failed
        assert commits(root) == 1
        assert "A  results/quality.json" in git(root, "status", "--porcelain")
        generations = script.generations

        # The hook lets it through now: the pending ledger file is committed, nothing re-runs.
        hook.unlink()
        code, output = apply(root, "--commit")
        assert code == 0, output
        assert "No changes." in output and "recorded 1 result(s) in commit" in output
        assert script.generations == generations
        assert commits(root) == 2 and committed_files(root) == ["results/quality.json"]
        entry = parse((root / "results" / "quality.json").read_text())
        assert ("Evalhub-Fingerprint", entry.fingerprint) in trailers(root)
        assert git(root, "status", "--porcelain").strip() == ""

        # A ledger file that does not describe the recorded result is never committed.
        forged = entry.model_copy(update={"fingerprint": "00" * 32})
        (root / "results" / "quality.json").write_text(render(forged))
        code, output = apply(root, "--commit")
        assert code == 0 and "recorded" not in output, output
        assert commits(root) == 2


def test_a_ledger_left_by_a_kill_during_git_commit_is_committed_next(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        assert run_cli("keys", "generate", cwd=root).code == 0
        init_repo(root)
        # git commit is killed (SIGKILL) while it runs: its hook kills it.
        hook = root / ".git" / "hooks" / "pre-commit"
        hook.write_text("#!/bin/sh\nkill -9 $PPID\n")
        hook.chmod(0o755)
        assert apply(root, "--commit")[0] == 1
        hook.unlink()
        assert commits(root) == 1 and (root / ".git" / "index.lock").exists()
        generations = script.generations

        code, output = apply(root, "--commit")
        assert code == 1 and "index.lock" in output
        assert "remove the index.lock file git names" in output
        (root / ".git" / "index.lock").unlink()  # what the hint says, once nothing runs
        code, output = apply(root, "--commit")
        assert code == 0 and "recorded 1 result(s) in commit" in output, output
        assert commits(root) == 2 and committed_files(root) == ["results/quality.json"]
        assert script.generations == generations  # nothing ran again
