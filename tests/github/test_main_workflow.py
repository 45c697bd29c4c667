"""The main workflow: triggers and loop protection, one apply at a time, permissions, secrets
scoped to the steps that need them, and its steps' scripts run (apply, signing key, gate, audit,
the ledger push).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.github.workflows import (
    ALL_FILES,
    MAIN_WORKFLOW,
    PR_WORKFLOW,
    StepRunner,
    git,
    load,
    scripts_of,
    step_named,
    steps_of,
)

# -- the main workflow ------------------------------------------------------------------------------


def test_main_workflow_triggers_and_loop_protection() -> None:
    workflow = load(MAIN_WORKFLOW)
    push = workflow["on"]["push"]
    assert push["branches"] == ["main"]
    assert "workflow_dispatch" in workflow["on"]
    assert {"evals/**", "evalhub.yaml"} <= set(push["paths"])
    # a negated pattern only excludes what the patterns before it included
    assert push["paths"][-1] == "!results/**"
    condition = " ".join(workflow["jobs"]["apply"]["if"].split())
    assert "!startsWith(github.event.head_commit.message, 'evalhub: record')" in condition
    assert "github.event_name == 'workflow_dispatch'" in condition
    apply = step_named(workflow, "Apply")["run"]
    assert "evalhub apply --yes --commit --skip-ci" in apply
    assert "--push" not in apply  # the push is a step of its own, the only one with a token


def test_main_workflow_never_applies_twice_at_once() -> None:
    workflow = load(MAIN_WORKFLOW)
    assert workflow["concurrency"] == {"group": "evalhub-main", "cancel-in-progress": False}
    assert "concurrency" not in workflow["jobs"]["apply"]


def test_main_workflow_permissions() -> None:
    workflow = load(MAIN_WORKFLOW)
    assert workflow["permissions"] == {"contents": "write", "id-token": "none"}
    assert all("permissions" not in job for job in workflow["jobs"].values())


def test_main_workflow_steps() -> None:
    workflow = load(MAIN_WORKFLOW)
    steps = steps_of(workflow)
    checkout = steps[0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0
    runs = [step.get("run", "") for step in steps]
    order = [
        next(i for i, run in enumerate(runs) if words in run)
        for words in (
            'python -m pip install "$EVALHUB_REQUIREMENT"',
            "git config user.name",
            "evalhub validate",
            "evalhub apply",
            "evalhub gate",
            "evalhub audit",
        )
    ]
    assert order == sorted(order)
    apply = step_named(workflow, "Apply")
    assert apply["env"]["EVALHUB_SIGNING_KEY"] == "${{ secrets.EVALHUB_SIGNING_KEY }}"
    assert "MLFLOW_TRACKING_URI" in workflow["jobs"]["apply"]["env"]
    gate = step_named(workflow, "Gate")
    assert 'evalhub gate --format markdown | tee -a "$GITHUB_STEP_SUMMARY"' in gate["run"]
    assert "2) " in gate["run"] and "exit 2" in gate["run"]
    assert "continue-on-error" not in gate  # here the gate decides
    assert "evalhub audit" in step_named(workflow, "Audit")["run"]
    # The report of every run: the HTML page as an artifact, the markdown in the job summary.
    report = step_named(workflow, "Report")
    assert 'evalhub report --out "$RUNNER_TEMP/evalhub-report"' in report["run"]
    assert 'report.md" >> "$GITHUB_STEP_SUMMARY"' in report["run"]
    assert "!cancelled()" in report["if"]  # also when the gate failed: that is when it matters
    upload = step_named(workflow, "Upload the report")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"] == "${{ runner.temp }}/evalhub-report"
    assert upload["with"]["name"] == "evalhub-report"


# -- its steps, run --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evaluations", "key", "expected"),
    [
        ("", "", []),
        ("quality  safety", "", ["-e", "quality", "-e", "safety"]),
        ("quality", "/tmp/key", ["--sign", "-e", "quality"]),
        ("'$(touch x)' ;", "", ["-e", "'$(touch", "-e", "x)'", "-e", ";"]),
    ],
)
def test_main_apply_step_arguments(
    steps: StepRunner, evaluations: str, key: str, expected: list[str]
) -> None:
    env = {"EVALUATIONS": evaluations}
    if key:
        env["EVALHUB_LEDGER_SIGNING_KEY"] = key
    proc = steps.run(MAIN_WORKFLOW, "Apply", **env)
    assert proc.returncode == 0, proc.stderr
    assert steps.calls() == [["apply", "--yes", "--commit", "--skip-ci", *expected]]
    assert not (steps.tmp / "x").exists()


def test_main_signing_key_step_writes_a_private_file(steps: StepRunner) -> None:
    proc = steps.run(
        MAIN_WORKFLOW, "Ledger commit signing key", LEDGER_SSH_KEY="-----BEGIN KEY-----"
    )
    assert proc.returncode == 0, proc.stderr
    key = steps.temp / "ledger-signing-key"
    assert key.read_text(encoding="utf-8") == "-----BEGIN KEY-----\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert steps.env_file.read_text(encoding="utf-8") == f"EVALHUB_LEDGER_SIGNING_KEY={key}\n"
    assert steps.run(MAIN_WORKFLOW, "Ledger commit signing key", LEDGER_SSH_KEY="").returncode == 0


@pytest.mark.parametrize(("name", "command"), [("Gate", "gate"), ("Audit", "audit")])
@pytest.mark.parametrize(
    ("code", "error"), [("0", None), ("2", "::error title=evalhub"), ("1", "could not")]
)
def test_main_gate_and_audit_steps(
    steps: StepRunner, name: str, command: str, code: str, error: str | None
) -> None:
    env = {
        f"FAKE_{command.upper()}_EXIT": code,
        f"FAKE_{command.upper()}_MARKDOWN": f"## {command}\n",
    }
    proc = steps.run(MAIN_WORKFLOW, name, **env)
    assert proc.returncode == int(code)
    assert steps.calls() == [[command, "--format", "markdown"]]
    assert steps.summary.read_text(encoding="utf-8") == f"## {command}\n"
    assert f"## {command}" in proc.stdout
    if error:
        assert error in proc.stdout


def test_main_ledger_push_rebases_onto_a_moved_main(steps: StepRunner, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    runner = tmp_path / "runner"
    git(tmp_path, "clone", "-q", str(origin), str(runner))
    (runner / "evals").mkdir()
    (runner / "evals" / "a.yaml").write_text("a: 1\n", encoding="utf-8")
    git(runner, "add", "-A")
    git(runner, "commit", "-q", "-m", "specs")
    git(runner, "push", "-q", "origin", "HEAD:main")
    identity = {
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@evalhub.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@evalhub.invalid",
        "LEDGER_TOKEN": "ghs_not-a-real-token",
    }  # fmt: skip
    # nothing waits: the step does nothing
    proc = steps.run(MAIN_WORKFLOW, "Push the ledger", cwd=runner, **identity)
    assert proc.returncode == 0 and "No commit of this run waits" in proc.stdout
    # main did not move: the ledger commit is pushed as it is
    (runner / "results").mkdir()
    (runner / "results" / "a.json").write_text("{}\n", encoding="utf-8")
    git(runner, "add", "-A")
    git(runner, "commit", "-q", "-m", "evalhub: record a pass 0123456789ab [skip ci]")
    proc = steps.run(MAIN_WORKFLOW, "Push the ledger", cwd=runner, **identity)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::warning" not in proc.stdout
    assert git(origin, "rev-parse", "main") == git(runner, "rev-parse", "HEAD")
    # someone merges while the next apply runs: its ledger commit is rebased onto the new main
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    (other / "evals" / "a.yaml").write_text("a: 2\n", encoding="utf-8")
    git(other, "commit", "-q", "-am", "merged meanwhile")
    git(other, "push", "-q", "origin", "HEAD:main")
    (runner / "results" / "a.json").write_text('{"a": 2}\n', encoding="utf-8")
    git(runner, "commit", "-q", "-am", "evalhub: record a pass 123456789abc [skip ci]")
    proc = steps.run(MAIN_WORKFLOW, "Push the ledger", cwd=runner, **identity)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::warning title=evalhub ledger::" in proc.stdout
    log = git(origin, "log", "--format=%s", "main").splitlines()
    assert log == [
        "evalhub: record a pass 123456789abc [skip ci]",
        "merged meanwhile",
        "evalhub: record a pass 0123456789ab [skip ci]",
        "specs",
    ]
    # the token was handed to git per command, never written into the repository's config
    assert "ghs_not-a-real-token" not in (runner / ".git" / "config").read_text(encoding="utf-8")


def test_the_embedded_store_is_cached_under_one_name() -> None:
    """Without a tracking server, main saves .evalhub/ to the Actions cache and both workflows
    restore it. A cache entry is found only with the very same `path` list (its version is a hash
    of it) and a matching key prefix."""
    caches = [
        (path.name, step)
        for path in (PR_WORKFLOW, MAIN_WORKFLOW)
        for step in steps_of(load(path))
        if step.get("uses", "").startswith("actions/cache/")
        and ".evalhub/mlflow.db" in step["with"]["path"]
    ]
    assert [(name, step["uses"].split("@")[0]) for name, step in caches] == [
        ("evalhub-pr.yml", "actions/cache/restore"),
        ("evalhub-main.yml", "actions/cache/restore"),
        ("evalhub-main.yml", "actions/cache/save"),
    ]
    assert len({step["with"]["path"] for _, step in caches}) == 1
    assert ".evalhub/keys" not in caches[0][1]["with"]["path"]  # never cache a private key
    save = caches[-1][1]
    assert save["with"]["key"].startswith("evalhub-state-")
    for _, restore in caches[:2]:
        assert restore["with"]["restore-keys"] == "evalhub-state-"
        assert restore["if"] == "env.MLFLOW_TRACKING_URI == ''"
    assert "!cancelled()" in save["if"] and "MLFLOW_TRACKING_URI == ''" in save["if"]


# -- secrets, step by step (issue 12 item 1) ------------------------------------------------------

SECRET = re.compile(r"\bsecrets\.([A-Z][A-Z0-9_]*)")


def secrets_by_step(workflow: dict[str, Any]) -> dict[str, set[str]]:
    """Step name -> the secrets its `env:` reads."""
    return {
        step.get("name", step.get("uses", "")): set(SECRET.findall(json.dumps(step.get("env", {}))))
        for step in steps_of(workflow)
    }


def test_signing_key_never_reaches_a_unit_process_in_the_main_workflow() -> None:
    """The signing key, the registry and MLflow credentials and the write token are given only
    to the steps that use them; none reaches a step that installs or runs third-party code
    except Apply, whose units get an allow-listed environment (tests/app/test_unit_secrets.py)."""
    workflow = load(MAIN_WORKFLOW)
    job = workflow["jobs"]["apply"]
    # the job-wide environment holds only the tracking URI (the cache steps test it)
    assert set(SECRET.findall(json.dumps(job["env"]))) <= {"MLFLOW_TRACKING_URI"}
    by_step = {name: found for name, found in secrets_by_step(workflow).items() if found}
    assert by_step == {
        "Ledger commit signing key": {"EVALHUB_LEDGER_SSH_KEY"},
        "Apply": {
            "SUPPORT_ASSISTANT_API_KEY", "EVALHUB_SIGNING_KEY",
            "EVALHUB_REGISTRY_USERNAME", "EVALHUB_REGISTRY_PASSWORD",
            "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
        },
        "Push the ledger": {"EVALHUB_LEDGER_TOKEN"},
        "Gate": {
            "EVALHUB_REGISTRY_USERNAME", "EVALHUB_REGISTRY_PASSWORD",
            "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
        },
        "Audit": {
            "EVALHUB_REGISTRY_USERNAME", "EVALHUB_REGISTRY_PASSWORD",
            "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
        },
        "Report": {
            "EVALHUB_REGISTRY_USERNAME", "EVALHUB_REGISTRY_PASSWORD",
            "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
        },
    }  # fmt: skip
    names = [step.get("name") for step in steps_of(workflow)]
    # The write token comes after every step that runs third-party code, and is the only push.
    assert names.index("Push the ledger") == names.index("Apply") + 1
    pushes = [
        name for name, code in scripts_of(workflow) if re.search(r"\bpush origin|--push", code)
    ]
    assert pushes == ["Push the ledger"]
    push = step_named(workflow, "Push the ledger")
    assert push["env"]["LEDGER_TOKEN"] == "${{ secrets.EVALHUB_LEDGER_TOKEN || github.token }}"
    assert "::add-mask::" in push["run"]  # the derived header is masked in the log too


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_checkouts_keep_no_token_in_the_git_config(path: Path) -> None:
    """Third-party code (pip installs, frameworks, custom adapters) runs after the checkout:
    `persist-credentials: false` keeps the token out of .git/config, and no checkout is given a
    token of its own."""
    checkouts = [
        s for s in steps_of(load(path)) if s.get("uses", "").startswith("actions/checkout@")
    ]
    for checkout in checkouts:
        assert checkout.get("with", {}).get("persist-credentials") is False, checkout
        assert "token" not in checkout.get("with", {}), checkout
