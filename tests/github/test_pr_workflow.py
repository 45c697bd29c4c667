"""The pull-request workflow: triggers and least privilege, validate -> plan -> gate, one comment
kept up to date (its github-script run by node against a fake API), and its steps' scripts run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.github.workflows import (
    MARKER,
    PR_WORKFLOW,
    StepRunner,
    load,
    scripts_of,
    step_named,
    steps_of,
)

# -- the pull-request workflow ----------------------------------------------------------------------


def test_pr_workflow_runs_on_spec_changes_with_least_privilege() -> None:
    workflow = load(PR_WORKFLOW)
    paths = workflow["on"]["pull_request"]["paths"]
    assert {"evals/**", "evalhub.yaml"} <= set(paths)
    assert "pull_request_target" not in workflow["on"]  # never run a PR's code with secrets
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in workflow["concurrency"]["group"]


def test_pr_workflow_validates_then_plans_then_gates() -> None:
    workflow = load(PR_WORKFLOW)
    steps = steps_of(workflow)
    uses = [step.get("uses", "") for step in steps]
    assert uses[0].startswith("actions/checkout@")
    setup = steps[1]
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["python-version"] == "3.11"
    install = step_named(workflow, "Install evalhub")
    assert install["env"] == {"EVALHUB_REQUIREMENT": "${{ vars.EVALHUB_REQUIREMENT }}"}
    runs = [step.get("run", "") for step in steps]
    order = [
        next(i for i, run in enumerate(runs) if words in run)
        for words in ("evalhub validate", "evalhub plan --format markdown", "evalhub gate")
    ]
    assert order == sorted(order)
    gate = step_named(workflow, "Gate (informational)")
    assert gate["continue-on-error"] is True
    assert "evalhub gate --format markdown" in gate["run"]
    assert "--detailed-exitcode" in step_named(workflow, "Plan")["run"]


def test_pr_workflow_keeps_one_comment_up_to_date() -> None:
    workflow = load(PR_WORKFLOW)
    scripts = [step for step in steps_of(workflow) if "github-script" in step.get("uses", "")]
    assert len(scripts) == 1  # one step talks to the pull request
    assert not any("gh pr comment" in code or "gh api" in code for _, code in scripts_of(workflow))
    step = scripts[0]
    script = step["with"]["script"]
    assert step["uses"] == "actions/github-script@v7"
    assert step["if"] == "${{ !cancelled() }}"  # a failed validate is reported too
    assert script.count(MARKER) == 1
    assert "const MARKER" in script and "[MARKER]" in script  # the body starts with it
    assert "listComments" in script and "body?.includes(MARKER)" in script
    assert script.count("updateComment(") == 1
    assert script.count("createComment(") == 1
    assert script.index("if (previous)") < script.index("updateComment(")
    assert script.index("updateComment(") < script.index("createComment(")
    # the gate's report joins the same comment
    assert 'read("gate.md")' in script and "GATE_EXIT" in step["env"]


GITHUB_SCRIPT_HARNESS = """\
// Runs the step's script as actions/github-script does (the body of an async function given
// require, github, context and core), against a pull request and a comments API in memory.
const fs = require("fs");
const [scriptFile, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioFile, "utf8"));
const calls = [];
const summary = [];
const fail = (message) => Object.assign(new Error(message), { status: scenario.fail });
const core = {
  summary: { addRaw(text) { summary.push(text); return this; }, async write() { return this; } },
  info: (message) => calls.push(["info", message]),
  notice: (message) => calls.push(["notice", message]),
  warning: (message) => calls.push(["warning", message]),
};
const github = {
  rest: {
    issues: {
      listComments: "listComments",
      async updateComment(args) {
        calls.push(["update", args.comment_id, args.body]);
        if (scenario.fail) throw fail("Resource not accessible by integration");
      },
      async createComment(args) {
        calls.push(["create", args.issue_number, args.body]);
        if (scenario.fail) throw fail("Resource not accessible by integration");
      },
    },
  },
  async paginate(method, args) {
    calls.push(["list", method, args.issue_number]);
    return scenario.comments;
  },
};
const context = {
  repo: { owner: "acme", repo: "specs" },
  serverUrl: "https://github.com",
  runId: 7,
  payload: {
    pull_request: {
      number: 5,
      head: { sha: "abcdef0123456789", repo: scenario.head_repo ? { full_name: scenario.head_repo } : null },
    },
  },
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const run = new AsyncFunction("require", "github", "context", "core", fs.readFileSync(scriptFile, "utf8"));
run(require, github, context, core).then(
  () => console.log(JSON.stringify({ calls, summary })),
  (error) => console.log(JSON.stringify({ calls, summary, error: String(error) })),
);
"""


class CommentScript:
    """The pull-request workflow's github-script, run by node with a fake GitHub API."""

    def __init__(self, node: str, tmp_path: Path) -> None:
        self.node = node
        self.tmp = tmp_path
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        step = step_named(load(PR_WORKFLOW), "Comment on the pull request")
        (tmp_path / "script.js").write_text(step["with"]["script"], encoding="utf-8")
        (tmp_path / "harness.js").write_text(GITHUB_SCRIPT_HARNESS, encoding="utf-8")

    def run(
        self,
        *,
        comments: list[dict[str, Any]] | None = None,
        head_repo: str | None = "acme/specs",
        fail: int | None = None,
        files: dict[str, str] | None = None,
        **env: str,
    ) -> dict[str, Any]:
        for name, text in (files or {}).items():
            (self.temp / name).write_text(text, encoding="utf-8")
        scenario = self.tmp / "scenario.json"
        scenario.write_text(
            json.dumps({"comments": comments or [], "head_repo": head_repo, "fail": fail}),
            encoding="utf-8",
        )
        defaults = {"VALIDATE_OUTCOME": "success", "PLAN_EXIT": "2", "GATE_EXIT": "2"}
        proc = subprocess.run(
            [self.node, str(self.tmp / "harness.js"), str(self.tmp / "script.js"), str(scenario)],
            env={"PATH": os.environ["PATH"], "RUNNER_TEMP": str(self.temp), **defaults, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result


@pytest.fixture()
def comment(node: str, tmp_path: Path) -> CommentScript:
    script = CommentScript(node, tmp_path)
    for name, text in {
        "validate.txt": "evals/c.yaml:9:43: spec.wieght: unknown field",
        "plan.md": "### evalhub plan\n\n**Plan: 1 to create**",
        "gate.md": "### evalhub gate\n\nfail: quality is stale",
    }.items():
        (script.temp / name).write_text(text, encoding="utf-8")
    return script


def test_pr_comment_is_created_once_then_edited_in_place(comment: CommentScript) -> None:
    first = comment.run(STATE_SOURCE="server")
    [listed, created] = first["calls"]
    assert listed == ["list", "listComments", 5]
    assert created[:2] == ["create", 5]
    body = created[2]
    assert body.startswith(MARKER + "\n### evalhub plan")
    assert "**Plan: 1 to create**" in body
    assert "### evalhub gate (informational): fail" in body and "quality is stale" in body
    assert "abcdef012345" in body and "/acme/specs/actions/runs/7" in body
    assert first["summary"] == [body]

    earlier = [
        {"id": 1, "user": {"type": "User"}, "body": f"quoting {MARKER}"},
        {"id": 2, "user": {"type": "Bot"}, "body": f"{MARKER}\nold plan"},
        {"id": 3, "user": {"type": "Bot"}, "body": "another bot"},
    ]
    second = comment.run(comments=earlier, PLAN_EXIT="0", STATE_SOURCE="server")
    assert [call[:2] for call in second["calls"]] == [["list", "listComments"], ["update", 2]]


def test_pr_comment_links_the_report_of_main(comment: CommentScript) -> None:
    result = comment.run(STATE_SOURCE="server")
    body = result["calls"][-1][2]
    link = "https://github.com/acme/specs/actions/workflows/evalhub-main.yml?query=branch%3Amain"
    assert f"[report of main]({link})" in body


def test_pr_comment_is_not_posted_when_nothing_changes(comment: CommentScript) -> None:
    result = comment.run(PLAN_EXIT="0", GATE_EXIT="0", STATE_SOURCE="server")
    assert [call[0] for call in result["calls"]] == ["list", "info"]
    assert len(result["summary"]) == 1  # the job summary has it all the same


def test_pr_comment_reports_invalid_specs(comment: CommentScript) -> None:
    result = comment.run(VALIDATE_OUTCOME="failure", PLAN_EXIT="", GATE_EXIT="")
    body = result["calls"][-1][2]
    assert "The specs do not validate" in body and "spec.wieght: unknown field" in body
    assert "evalhub gate" not in body


def test_pr_comment_says_which_state_the_plan_read(comment: CommentScript) -> None:
    cached = comment.run(STATE_SOURCE="cache")["calls"][-1][2]
    assert "main workflow last saved" in cached
    fork = comment.run(STATE_SOURCE="none", head_repo="someone/specs")
    assert "forks get no secrets" in fork["summary"][0]


def test_pr_comment_from_a_fork_goes_to_the_summary_only(comment: CommentScript) -> None:
    for head_repo in ("someone/specs", None):  # None: the fork was deleted
        result = comment.run(head_repo=head_repo, STATE_SOURCE="none")
        assert [call[0] for call in result["calls"]] == ["notice"]
        assert result["summary"][0].startswith(MARKER)
        assert "error" not in result


def test_pr_comment_without_write_access_warns(comment: CommentScript) -> None:
    result = comment.run(fail=403, STATE_SOURCE="server")
    assert result["calls"][-1][0] == "warning" and "error" not in result
    broken = comment.run(fail=500, STATE_SOURCE="server")
    assert "Resource not accessible" in broken["error"]  # anything else fails the step


def test_pr_comment_is_cut_below_githubs_limit(comment: CommentScript) -> None:
    long_plan = "### evalhub plan\n" + "| row |\n" * 20_000
    result = comment.run(files={"plan.md": long_plan}, STATE_SOURCE="server")
    body = result["calls"][-1][2]
    assert len(body) < 65_536
    assert "cut: the whole report is in the workflow run's summary" in body


def test_pr_workflow_handles_forks_without_failing() -> None:
    script = step_named(load(PR_WORKFLOW), "Comment on the pull request")["with"]["script"]
    assert "pr.head.repo.full_name !== repository" in script
    fork_branch = script.index("if (fromFork)")
    assert script.index("core.summary") < fork_branch < script.index("listComments")
    assert "error.status !== 403" in script  # Dependabot: same repository, read-only token


# -- its steps, run --------------------------------------------------------------------------------


def test_pr_validate_step_annotates_each_problem(steps: StepRunner) -> None:
    report = {
        "ok": False,
        "errors": [
            {"file": "evals/c.yaml", "line": 9, "column": 43, "path": "spec.wieght",
             "message": "unknown field 'wieght'", "hint": "did you mean 'weight'?"},
            {"file": "evals/a,b.yaml", "line": 1, "column": 1, "path": "kind",
             "message": "50% wrong\nsecond line", "hint": None},
        ],
    }  # fmt: skip
    proc = steps.run(
        PR_WORKFLOW,
        "Validate the specs",
        FAKE_VALIDATE_EXIT="1",
        FAKE_VALIDATE_TEXT="evals/c.yaml:9:43: spec.wieght: unknown field\n",
        FAKE_VALIDATE_JSON=json.dumps(report),
    )
    assert proc.returncode == 1
    assert steps.calls() == [["validate"], ["validate", "--format", "json"]]
    assert (
        "::error file=evals/c.yaml,line=9,col=43,title=spec.wieght::unknown field 'wieght' (hint: did you mean 'weight'?)"
        in proc.stdout
    )
    assert (
        "::error file=evals/a%2Cb.yaml,line=1,col=1,title=kind::50%25 wrong%0Asecond line"
        in proc.stdout
    )
    assert (steps.temp / "validate.txt").read_text(encoding="utf-8").startswith("evals/c.yaml:9:43")


@pytest.mark.parametrize(("code", "fails"), [("0", False), ("2", False), ("1", True)])
def test_pr_plan_step_exit_codes(steps: StepRunner, code: str, fails: bool) -> None:
    proc = steps.run(
        PR_WORKFLOW, "Plan", FAKE_PLAN_EXIT=code, FAKE_PLAN_MARKDOWN="### evalhub plan\n"
    )
    assert (proc.returncode != 0) == fails
    assert steps.calls() == [["plan", "--format", "markdown", "--detailed-exitcode"]]
    assert steps.outputs() == {"exit-code": code}
    assert (steps.temp / "plan.md").read_text(encoding="utf-8") == "### evalhub plan\n"


def test_pr_gate_step_reports_the_verdict(steps: StepRunner) -> None:
    proc = steps.run(PR_WORKFLOW, "Gate (informational)", FAKE_GATE_EXIT="2")
    assert proc.returncode == 2  # shown as failed, and the job goes on (continue-on-error)
    assert steps.outputs() == {"exit-code": "2"}
    assert (steps.temp / "gate.md").read_text(encoding="utf-8") == "gate report\n"
