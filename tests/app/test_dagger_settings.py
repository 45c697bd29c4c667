"""Choosing the Dagger executor, and its refusals before anything runs (in-process, fast)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evalhub.app import compose
from evalhub.app.jobs import executor_kind
from evalhub.app.project import load_project
from evalhub.app.specs import resolved_evaluations
from evalhub.core.errors import ConfigError
from evalhub.core.project import DaggerSettings
from tests.project import make_project


def kinds(root: Path) -> list[str]:
    project = load_project(root)
    return [executor_kind(project, e) for e in resolved_evaluations(project, project.spec_source())]


def test_executors_default_applies_unless_the_evaluation_names_one(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    assert kinds(root) == ["local"]
    (root / "evalhub.yaml").write_text("specs: [evals]\nexecutors: {default: dagger}\n")
    assert kinds(root) == ["dagger"]
    evaluation = root / "evals" / "evaluations.yaml"
    evaluation.write_text(evaluation.read_text() + "  execution: {executor: local}\n")
    assert kinds(root) == ["local"]


def test_no_engine_is_refused_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from evalhub.adapters.executors.dagger import DaggerExecutor

    monkeypatch.delenv("DAGGER_SESSION_PORT", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError) as refused:
        DaggerExecutor(DaggerSettings())
    assert "no Dagger CLI on PATH" in refused.value.message
    assert "executor: local" in refused.value.hint
    with pytest.raises(ConfigError) as refused:
        DaggerExecutor(DaggerSettings(cli="/nonexistent/dagger"))
    assert "at /nonexistent/dagger" in refused.value.message


def test_without_the_sdk_the_executor_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dagger", None)  # as if dagger-io were not installed
    monkeypatch.delitem(sys.modules, "evalhub.adapters.executors.dagger", raising=False)
    project = load_project(make_project(tmp_path, "http://127.0.0.1:9/v1"))
    with pytest.raises(ConfigError) as refused:
        compose.executor(project, "dagger", 1)
    assert "pip install 'evalhub-gitops[dagger]'" in refused.value.hint
