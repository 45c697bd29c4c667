"""A result recorded but not published stays pending — in MLflow, not in the ledger — and the
next apply publishes it without running a unit (issue 11 item 5; issue 12 items 8 and 11).

In process: apply gets an in-memory state store, a scripted executor and a publisher (a fake,
an unanswering registry, or the project's own OCI layout) through its seams (tests/fakes.py);
gate and audit are the command line's, against a real git repository.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalhub.app import compose
from evalhub.app.apply import ApplyOptions, ApplyReport, apply
from evalhub.app.keys import generate_keys, load_signer
from evalhub.app.ledger import CommitOptions
from evalhub.app.plan import make_project_plan
from evalhub.app.project import Project, load_project
from evalhub.core.errors import PublishError
from evalhub.ports import Publisher, Signer, StateStore
from tests.app.test_ledger import commits, git, init_repo
from tests.conftest import run_cli
from tests.fakes import FakePublisher, MemoryStateStore, NoEnvironments, ScriptedExecutor
from tests.project import make_project
from tests.registry import sample_result

DEAD_ENDPOINT = "http://127.0.0.1:9/v1"  # nothing listens: the endpoint facts fail at once
POLICY = """apiVersion: evalhub.dev/v1
kind: Policy
metadata: {name: promote}
spec:
  model: assistant
  require: [quality]
"""
GOOD = {"quality/returns-qa": {"contains": 1.0}, "quality/refusals": {"refusal": 1.0}}


@pytest.fixture(autouse=True)
def no_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = make_project(tmp_path / "repo", DEAD_ENDPOINT)
    (root / "evalhub.yaml").write_text(
        "specs: [evals]\nexecutors: {concurrency: 2}\nregistry: {timeout_seconds: 1}\n"
    )
    (root / "evals" / "policies.yaml").write_text(POLICY)
    loaded = load_project(root)
    generate_keys(loaded)
    init_repo(root)
    return loaded


@pytest.fixture
def store() -> MemoryStateStore:
    return MemoryStateStore()


def run(
    project: Project,
    store: StateStore,
    publisher: Publisher | None = None,
    commit: bool = False,
) -> tuple[ApplyReport, ScriptedExecutor]:
    executor = ScriptedExecutor(GOOD)
    options = ApplyOptions(ledger=CommitOptions(commit=commit))
    seams = {"publisher": publisher} if publisher else {}  # none: the project's own target
    report = apply(project, options, store, executor, NoEnvironments(), **seams)
    return report, executor


def actions(project: Project, store: StateStore, publisher: Publisher | None = None) -> list[str]:
    seams = {"publisher": publisher} if publisher else {}
    plan = make_project_plan(project, store=store, **seams).plan
    return [a.action for a in plan.actions]


def cli(project: Project, *args: str) -> int:
    result = run_cli(*args, cwd=project.root, timeout=300)
    assert "Traceback" not in result.output, result.output
    return result.code


# -- issue 11 item 5 ---------------------------------------------------------------------------


def test_a_recorded_unpublished_result_is_published_on_the_next_apply_without_model_calls(
    project: Project, store: StateStore
) -> None:
    down = FakePublisher(down=True)
    first, executor = run(project, store, down)
    assert sorted(executor.ran) == ["quality/refusals", "quality/returns-qa"]
    (pending,) = first.unpublished
    assert "no answer" in (pending.publish_error or "")
    assert actions(project, store, FakePublisher()) == ["publish"]

    up = FakePublisher()
    second, executor = run(project, store, up)
    assert executor.ran == []  # no unit ran: no model call
    assert [e.action for e in second.evaluations] == ["publish"]
    assert up.published == ["quality"] and second.unpublished == []
    (entry,) = second.evaluations
    assert entry.published is not None and entry.published.startswith("oci-layout:memory:quality-")
    assert actions(project, store, up) == ["noop"]


# -- issue 12 item 8 ---------------------------------------------------------------------------


@contextlib.contextmanager
def silent_registry() -> Iterator[str]:
    """A loopback TCP server that accepts every connection and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def test_a_registry_that_never_answers_fails_within_the_registry_timeout(
    project: Project,
) -> None:
    timeout = project.config.registry.timeout_seconds
    with silent_registry() as host:
        publisher = compose.publisher(project, f"oci://{host}/r", insecure=True)
        started = time.monotonic()
        with pytest.raises(PublishError) as caught:
            publisher.publish(sample_result(), {}, _signer(project))
        first = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(PublishError):
            publisher.publish(sample_result("second"), {}, _signer(project))
        second = time.monotonic() - started
    # One wait of the timeout (no retry of a timeout, none of oras's 131 s of retries)...
    assert timeout <= first < 3 * timeout
    # ...and a registry that did not answer is not waited for again in the same apply.
    assert second < timeout / 2
    assert f"cannot reach oci://{host}/r: no answer within 1 s" in caught.value.message
    assert "registry.timeout_seconds" in caught.value.hint


def test_a_registry_outage_during_apply_commit_commits_nothing_and_the_next_apply_completes_it(
    project: Project, store: StateStore
) -> None:
    before = commits(project.root)
    with silent_registry() as host:
        outage = compose.publisher(project, f"oci://{host}/r", insecure=True)
        started = time.monotonic()
        report, _ = run(project, store, outage, commit=True)
        assert time.monotonic() - started < 30 * project.config.registry.timeout_seconds
    (pending,) = report.unpublished
    assert "no answer within 1 s" in (pending.publish_error or "")
    # Pending: recorded in MLflow, nothing written to or committed in the ledger.
    assert report.ledger_commit is None and commits(project.root) == before
    assert not (project.root / "results" / "quality.json").exists()
    assert actions(project, store) == ["publish"]

    report, executor = run(project, store, commit=True)  # the project's OCI layout
    assert executor.ran == [] and report.unpublished == []
    assert commits(project.root) == before + 1
    assert "Evalhub-Result: oci-layout:" in git(project.root, "log", "-1", "--format=%B")
    # Every committed revision verifies: gate and audit agree.
    assert cli(project, "gate") == 0
    assert cli(project, "audit") == 0


# -- issue 12 item 11 --------------------------------------------------------------------------


def test_a_deleted_oci_layout_is_planned_and_republished_without_model_calls(
    project: Project, store: StateStore
) -> None:
    run(project, store, commit=True)
    assert cli(project, "gate") == 0
    shutil.rmtree(project.state_dir / "oci")
    assert cli(project, "gate") == 2  # the ledger's result is gone from the target

    plan = make_project_plan(project, store=store).plan
    (action,) = plan.actions
    assert action.action == "publish" and "no longer holds" in action.reasons[0]
    report, executor = run(project, store, commit=True)
    assert executor.ran == [] and report.unpublished == []
    assert (project.state_dir / "oci" / "index.json").is_file()
    assert cli(project, "gate") == 0
    assert actions(project, store) == ["noop"]


def test_the_plan_asks_the_publisher_about_every_recorded_result_at_once(
    project: Project, store: StateStore
) -> None:
    publisher = FakePublisher()
    run(project, store, publisher)
    assert actions(project, store, publisher) == ["noop"]
    (asked,) = publisher.asked[-1:]
    assert asked == set(publisher.held)  # one bulk question, naming the published digest
    publisher.forget()
    assert actions(project, store, publisher) == ["publish"]


def _signer(project: Project) -> Signer:
    return load_signer(project)
