"""evalhub's pipeline as Dagger functions, the same on a laptop and in any CI:

    dagger call -m dagger validate --source=.
    dagger call -m dagger plan --source=. --format=markdown
    dagger call -m dagger apply --source=. --signing-key=env:EVALHUB_SIGNING_KEY export --path=.
    dagger call -m dagger runner-image --source=. --provider=lm-eval

--source is the evaluation repository; --checkout is evalhub's source (default: the repository
this module lives in). Each function runs evalhub in its tool container: Python 3.11 slim with
evalhub installed from the checkout's wheel (the same wheel stage as the runner images). The
runner image of a Provider is the definition `evalhub runner-image NAME --format json` prints
(evalhub.core.runner_image), replayed step by step: the module never restates it.

Secrets are Dagger secrets (`--signing-key=env:NAME`, `file:PATH`, ...), set in the container
only as secret variables: never an argument, a plain variable, or a layer.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import dagger
from dagger import DefaultPath, Doc, Ignore, dag, function, object_type

BASE = "python:3.11-slim"
SOURCE_DIR = "/src/evalhub"
SOURCE_FILES = ["pyproject.toml", "README.md", "evalhub/**"]
REPO = "/repo"
# What never enters the tool container from --source: local state and environments.
IGNORED = [".venv", ".evalhub", "**/__pycache__", "node_modules", ".git/objects/pack/tmp_*"]

Source = Annotated[
    dagger.Directory,
    Ignore(IGNORED),
    Doc("The evaluation repository (evalhub.yaml at its root)"),
]
Checkout = Annotated[
    dagger.Directory,
    DefaultPath("/"),
    Ignore(IGNORED),
    Doc("evalhub's source (default: the repository this module is in)"),
]


@object_type
class EvalhubCi:
    base: Annotated[str, Doc("Base image of the tool and runner images")] = BASE

    @function
    async def tool(self, source: Source, checkout: Checkout) -> dagger.Container:
        """evalhub installed from the checkout's wheel, the repository at /repo (its working
        directory)."""
        return await self._tool(source, checkout)

    async def _tool(self, source: dagger.Directory, checkout: dagger.Directory) -> dagger.Container:
        stage = dag.container().from_(self.base)
        stage = stage.with_directory(SOURCE_DIR, checkout, include=SOURCE_FILES)
        stage = stage.with_exec(
            [
                "python",
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-cache-dir",
                "-w",
                "/wheels",
                SOURCE_DIR,
            ]
        )
        wheels = stage.directory("/wheels")
        name = next(e for e in await wheels.entries() if e.endswith(".whl"))
        wheel = f"/wheels/{name}"
        return (
            dag.container()
            .from_(self.base)
            .with_file(wheel, wheels.file(name))
            .with_exec(
                [
                    "python",
                    "-m",
                    "pip",
                    "install",
                    "--no-cache-dir",
                    "--disable-pip-version-check",
                    wheel,
                ]
            )
            .with_directory(REPO, source)
            .with_workdir(REPO)
        )

    @function
    async def validate(self, source: Source, checkout: Checkout) -> str:
        """`evalhub validate`: fails (with every problem) when a spec is invalid."""
        return (
            await (await self._tool(source, checkout)).with_exec(["evalhub", "validate"]).stdout()
        )

    @function
    async def plan(
        self,
        source: Source,
        checkout: Checkout,
        format: Annotated[str, Doc("text, json or markdown")] = "markdown",
        tracking_uri: Annotated[str | None, Doc("MLflow tracking URI (else embedded)")] = None,
        tracking_token: Annotated[dagger.Secret | None, Doc("MLflow token")] = None,
    ) -> str:
        """`evalhub plan`: what an apply would run, and why."""
        ctr = _tracking((await self._tool(source, checkout)), tracking_uri, tracking_token)
        return await ctr.with_exec(["evalhub", "plan", "--format", format]).stdout()

    @function
    async def apply(
        self,
        source: Source,
        checkout: Checkout,
        tracking_uri: Annotated[str | None, Doc("MLflow tracking URI (else embedded)")] = None,
        tracking_token: Annotated[dagger.Secret | None, Doc("MLflow token")] = None,
        signing_key: Annotated[dagger.Secret | None, Doc("Private signing key PEM")] = None,
        signing_key_env: Annotated[str, Doc("signing.key_env of evalhub.yaml")] = (
            "EVALHUB_SIGNING_KEY"
        ),
        registry_password: Annotated[dagger.Secret | None, Doc("OCI registry password")] = None,
        registry_password_env: Annotated[str, Doc("registry.password_env")] = (
            "EVALHUB_REGISTRY_PASSWORD"
        ),
        api_key: Annotated[dagger.Secret | None, Doc("The Model's API key")] = None,
        api_key_env: Annotated[str, Doc("The Model's api_key_env")] = "OPENAI_API_KEY",
    ) -> dagger.Directory:
        """`evalhub apply --yes`; returns the repository with its new ledger and state (export
        it back with `export --path=.`). Units with `executor: dagger` run in this same engine
        (nested), each in its Provider's runner image."""
        ctr = _tracking((await self._tool(source, checkout)), tracking_uri, tracking_token)
        for name, secret in (
            (signing_key_env, signing_key),
            (registry_password_env, registry_password),
            (api_key_env, api_key),
        ):
            if secret is not None:
                ctr = ctr.with_secret_variable(name, secret)
        ctr = ctr.with_exec(["evalhub", "apply", "--yes"], experimental_privileged_nesting=True)
        return ctr.directory(REPO)

    @function
    async def runner_image(
        self,
        source: Source,
        checkout: Checkout,
        provider: Annotated[str, Doc("The Provider's name")],
    ) -> dagger.Container:
        """The runner image the Provider's units run in (its definition: `evalhub
        runner-image NAME --format json`)."""
        printed = await (
            (await self._tool(source, checkout))
            .with_exec(["evalhub", "runner-image", provider, "--format", "json"])
            .stdout()
        )
        return build_runner(json.loads(printed), checkout)


def build_runner(definition: dict[str, Any], checkout: dagger.Directory) -> dagger.Container:
    """Replay a runner image definition (`evalhub runner-image --format json`) with evalhub's
    `checkout`."""
    if definition["own"]:
        return dag.container().from_(definition["own"]).with_workdir(definition["workdir"])
    stage = dag.container().from_(definition["base"])
    stage = stage.with_directory(
        definition["source_dir"], checkout, include=list(definition["source_files"])
    )
    for step in definition["wheel_stage"]:
        stage = stage.with_exec(list(step))
    wheel = definition["wheel"]
    runner = dag.container().from_(definition["base"]).with_file(wheel, stage.file(wheel))
    for step in definition["install_steps"]:
        runner = runner.with_exec(list(step))
    return runner.with_workdir(definition["workdir"])


def _tracking(
    ctr: dagger.Container, uri: str | None, token: dagger.Secret | None
) -> dagger.Container:
    if uri:
        ctr = ctr.with_env_variable("MLFLOW_TRACKING_URI", uri)
    if token is not None:
        ctr = ctr.with_secret_variable("MLFLOW_TRACKING_TOKEN", token)
    return ctr
