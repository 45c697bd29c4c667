"""The runner image definition and a unit as a container sees it: pure functions."""

from __future__ import annotations

from evalhub.core.container_job import HOST_ALIAS, PROJECT_DIR, Tunnel, container_job, is_loopback
from evalhub.core.job import JobSpec
from evalhub.core.resolved import ResolvedModel, ResolvedProvider, ResolvedUnit
from evalhub.core.runner_image import (
    ENVIRONMENT_DIR,
    PIP,
    RunnerImage,
    runner_image,
)
from evalhub.core.spec.model import Endpoint, RequestDefaults, Tokenizer
from evalhub.core.spec.provider import Resources, Scale

TORCH = "torch==2.13.0"


def provider(requirements: tuple[str, ...] = (), image: str | None = None) -> ResolvedProvider:
    return ResolvedProvider(
        name="p",
        adapter="builtin",
        version=None,
        requirements=requirements,
        image=image,
        resources=Resources(),
        config={},
    )


def model(url: str, tokenizer: Tokenizer | None = None) -> ResolvedModel:
    return ResolvedModel(
        name="m",
        type="generative",
        endpoint=Endpoint(url=url, served_name="m", api_key_env="KEY"),
        local=None,
        revision="v1",
        defaults=RequestDefaults(),
        tokenizer=tokenizer,
    )


def job(url: str = "http://127.0.0.1:8000/v1", **unit: object) -> JobSpec:
    spec = ResolvedUnit(
        key="qa",
        model=model(url, unit.pop("tokenizer", None)),  # type: ignore[arg-type]
        provider=provider(),
        benchmark="qa",
        params={},
        primary_metric="contains",
        direction="higher",
        scale=Scale(),
        files={"data/qa.jsonl": "sha256:" + "0" * 64},
        dataset="data/qa.jsonl",
        weight=1.0,
        threshold=None,
    )
    return JobSpec(
        evaluation="e",
        unit="e/qa",
        fingerprint="f" * 64,
        spec=spec,
        spec_root="/repo/evals",
        project_root="/repo",
        output_dir="/repo/.evalhub/runs/x/output",
    )


def test_the_torch_pin_is_installed_first_by_the_managed_environment_builder() -> None:
    image = runner_image(provider(("lm-eval==0.4.13", TORCH)), "0.1.0")
    steps = image.install_steps("/wheels/evalhub.whl")
    assert steps[0] == (*PIP, "/wheels/evalhub.whl")
    assert steps[1][:5] == (
        "python",
        "-m",
        "evalhub.adapters.environments",
        "build",
        ENVIRONMENT_DIR,
    )
    assert image.environment == ENVIRONMENT_DIR


def test_the_key_ignores_requirement_order_and_follows_everything_else() -> None:
    a = runner_image(provider(("a==1", TORCH)), "0.1.0")
    b = runner_image(provider((TORCH, "a==1")), "0.1.0")
    assert a.key() == b.key() and a.tag == b.tag
    assert a.key() != runner_image(provider(("a==2", TORCH)), "0.1.0").key()
    assert a.key() != runner_image(provider(("a==1", TORCH)), "0.2.0").key()
    assert a.key() != runner_image(provider(("a==1", TORCH)), "0.1.0", "python:3.11").key()


def test_a_providers_own_image_is_used_as_it_is() -> None:
    own = "registry.example/lm-eval@sha256:" + "a" * 64
    image = runner_image(provider(("x==1",), own), "0.1.0")
    assert not image.built and image.tag == own
    assert image.containerfile() == f"FROM {own}\n"


def test_the_containerfile_has_the_same_steps_as_the_dagger_chain() -> None:
    image = RunnerImage("python:3.11-slim", "0.1.0", (TORCH,))
    text = image.containerfile()
    wheel = "/wheels/evalhub-0.1.0-py3-none-any.whl"
    assert text.startswith("FROM python:3.11-slim AS wheel\n")
    for step in [*image.wheel_stage(), *image.install_steps(wheel)]:
        assert '", "'.join(step) in text


def test_loopback_endpoints_are_tunnelled_and_remote_ones_are_not() -> None:
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://localhost/v1")
    assert is_loopback("http://[::1]:9/v1") and not is_loopback("https://api.example.com/v1")
    inside = container_job(job(), runner_image(provider(), "0.1.0"))
    endpoint = inside.job.spec.model.endpoint
    assert endpoint is not None and endpoint.url == f"http://{HOST_ALIAS}:8000/v1"
    assert inside.tunnels == (Tunnel(8000),)
    remote = container_job(job("https://api.example.com/v1"), runner_image(provider(), "0.1.0"))
    assert remote.tunnels == () and remote.job.spec.model == job().spec.model.model_copy(
        update={
            "endpoint": Endpoint(
                url="https://api.example.com/v1", served_name="m", api_key_env="KEY"
            )
        }
    )


def test_only_the_units_files_are_mounted_and_identity_is_kept() -> None:
    host = job(tokenizer=Tokenizer(path_env="TOK"))
    inside = container_job(host, runner_image(provider(), "0.1.0"), {"TOK": "/cache/tok"})
    assert inside.files == {f"{PROJECT_DIR}/evals/data/qa.jsonl": "/repo/evals/data/qa.jsonl"}
    assert inside.directories == {"/evalhub/tokenizers/TOK": "/cache/tok"}
    assert inside.env == {"TOK": "/evalhub/tokenizers/TOK"}
    assert inside.job.fingerprint == host.fingerprint
    assert inside.job.spec.files == host.spec.files
    assert inside.job.spec_root == f"{PROJECT_DIR}/evals" and inside.job.environment is None


def test_a_locked_provider_s_image_builds_exactly_its_lock_and_has_its_own_key() -> None:
    from evalhub.adapters.environments import build_arguments

    unlocked = RunnerImage("python:3.11-slim", "0.1.0", (TORCH,))
    pins = ("torch==2.13.0+cpu", "sympy==1.14.0")
    locked = RunnerImage("python:3.11-slim", "0.1.0", (TORCH,), lock=pins)
    relocked = RunnerImage("python:3.11-slim", "0.1.0", (TORCH,), lock=pins[:1])
    assert len({unlocked.key(), locked.key(), relocked.key()}) == 3
    assert locked.key() == RunnerImage("python:3.11-slim", "0.1.0", (TORCH,), lock=pins[::-1]).key()
    (step,) = locked.install_steps("w.whl")[1:]
    assert step[-3:] == ("--lock", *pins)
    target, requirements, lock = build_arguments(list(step[4:]))
    assert (str(target), requirements, lock) == (ENVIRONMENT_DIR, [TORCH], list(pins))
    assert build_arguments(list(unlocked.install_steps("w.whl")[1][4:]))[2] == []
