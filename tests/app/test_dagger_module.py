"""The dagger/ module's functions, called as `dagger call` would, through the real SDK against
the session fake (tests/dagger_engine): their queries are checked against Dagger's schema and
their containers really run evalhub."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dagger
from dagger import dag
from tests.dagger_engine.engine import Engine, running_engine
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, unit_runs

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dagger" / "src"))
from evalhub_ci.main import EvalhubCi  # noqa: E402

SECRET = "sk-evalhub-module-" + "m" * 24

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the session fake runs units as root")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)
    with running_engine() as (engine, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield engine


def call(function: Callable[[EvalhubCi, dagger.Directory, dagger.Directory], Awaitable[Any]],
         project: Path) -> Any:  # fmt: skip
    """Run a module function with --source=PROJECT and evalhub's checkout, as `dagger call`."""

    async def main() -> Any:
        async with dagger.connection(dagger.Config(retry=None)):
            checkout = dag.host().directory(
                str(REPO), include=["pyproject.toml", "README.md", "evalhub/**"]
            )
            source = dag.host().directory(str(project), exclude=[".evalhub"])
            return await function(EvalhubCi(), source, checkout)

    return asyncio.run(main())


def test_validate_and_plan(tmp_path: Path, engine: Engine) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9/v1")
    assert call(lambda m, s, c: m.validate(s, c), project) == "✓ 4 documents valid\n"
    plan = call(lambda m, s, c: m.plan(s, c, format="json"), project)
    assert [a["action"] for a in json.loads(plan)["actions"]] == ["create"]


def test_validate_fails_with_the_problem_located(tmp_path: Path, engine: Engine) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9/v1")
    (project / "evals" / "evaluations.yaml").write_text(
        (project / "evals" / "evaluations.yaml").read_text().replace("model:", "modle:")
    )
    with pytest.raises(dagger.ExecError) as failed:
        call(lambda m, s, c: m.validate(s, c), project)
    assert failed.value.exit_code == 1
    assert "evals/evaluations.yaml:5:3: spec.modle: unknown field" in failed.value.stdout


def test_apply_returns_the_repository_with_its_records(tmp_path: Path, engine: Engine) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        project = make_project(tmp_path / "repo", url)
        out = tmp_path / "exported"

        async def apply(m: EvalhubCi, s: dagger.Directory, c: dagger.Directory) -> str:
            key = dag.secret("env://EVALHUB_TEST_API_KEY")
            done = await m.apply(s, c, api_key=key, api_key_env="EVALHUB_TEST_API_KEY")
            return await done.export(str(out))

        call(apply, project)
        assert script.generations == 5
    assert [s for _, _, s in unit_runs(out)] == ["FINISHED", "FINISHED"]
    assert all(SECRET not in json.dumps(q) for q in engine.queries)


def test_runner_image_replays_the_definition_evalhub_prints(tmp_path: Path, engine: Engine) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9/v1")

    async def digest(m: EvalhubCi, s: dagger.Directory, c: dagger.Directory) -> str:
        image = await m.runner_image(s, c, provider="builtin")
        return await image.rootfs().digest()

    assert call(digest, project).startswith("sha256:")
    printed = ["evalhub", "runner-image", "builtin", "--format", "json"]
    assert printed in engine.executions
    # A Provider without requirements: its runner image is the tool image, step for step, so
    # the engine (content-addressed) built the wheel and installed it once for both.
    assert engine.executions.count(["pip", "wheel", "/src/evalhub"]) == 1
    assert sum(1 for a in engine.executions if a[:2] == ["pip", "install"]) == 1
