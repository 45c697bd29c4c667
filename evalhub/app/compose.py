"""The composition root: the one app module that imports evalhub.adapters.

Every other app module reaches the outside world through what this module builds from the
project's settings — state stores, executors, managed environments, publishers, signers and
keyrings (behind the Protocols of evalhub.ports) — or through the few plain helpers it passes
on (atomic files, file locks, git, machine facts). tests/test_layers.py keeps it the only one.

Heavy adapters (MLflow, OCI, cryptography) are imported when first built, not when this module
is, so commands that need none of them start fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evalhub.adapters.environments import lock, packages
from evalhub.adapters.files import file_lock, write_atomic
from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.git import (
    CommitChange,
    GitObject,
    Revision,
    commit_changes,
    commit_exists,
    commit_paths,
    current_branch,
    directory_revisions,
    dirty_paths,
    extract_tree,
    file_revisions,
    git_objects,
    head_commit,
    is_repository,
    ledger_paths,
    push,
    remote_url,
    resolve_revision,
    show_file,
    show_prefix,
    verify_commit,
)
from evalhub.adapters.machine import machine_facts
from evalhub.adapters.redact_files import redact_tree
from evalhub.core.errors import ConfigError, PublishError
from evalhub.core.job import JobSpec
from evalhub.core.secrets import WELL_KNOWN
from evalhub.ports import (
    EnvironmentStore,
    Executor,
    Keyring,
    ModelImage,
    PublishedResult,
    Publisher,
    Signer,
    StateStore,
)

if TYPE_CHECKING:
    from evalhub.adapters.spec_files import WorkingTreeSpecs, display
    from evalhub.adapters.yaml_source import parse_documents, read_spec_file
    from evalhub.app.project import Project
    from evalhub.client import EvalhubClient
    from evalhub.core.spec.evaluation import Execution
    from evalhub.core.spec.model import Endpoint
    from evalhub.ports import ControlPlane

__all__ = [
    "CommitChange",
    "GitObject",
    "Revision",
    "WorkingTreeSpecs",
    "api_client",
    "commit_changes",
    "commit_exists",
    "commit_paths",
    "control_plane_app",
    "current_branch",
    "dagger_executor",
    "default_layout",
    "directory_revisions",
    "dirty_paths",
    "display",
    "environment_store",
    "executor",
    "export_results",
    "extract_tree",
    "fetch_models",
    "file_lock",
    "file_revisions",
    "generate_key_pair",
    "git_objects",
    "head_commit",
    "is_repository",
    "keyring",
    "kubernetes_executor",
    "kubernetes_manifests",
    "ledger_paths",
    "load_adapter",
    "local_executor",
    "lock",
    "machine_facts",
    "mlflow_state_store",
    "model_image",
    "packages",
    "parse_documents",
    "project_publisher",
    "published_result",
    "publisher",
    "push",
    "read_spec_file",
    "redact_tree",
    "remote_url",
    "resolve_revision",
    "result_bundle",
    "serve_http",
    "show_file",
    "show_prefix",
    "signer",
    "verify_commit",
    "write_atomic",
]

# Spec loading (and with it jsonschema and every spec model) is imported when an app module
# first asks for it, not by `evalhub run-unit`, which needs none of it (bench/apply_bench.py).
_LAZY = {
    "WorkingTreeSpecs": "evalhub.adapters.spec_files",
    "display": "evalhub.adapters.spec_files",
    "parse_documents": "evalhub.adapters.yaml_source",
    "read_spec_file": "evalhub.adapters.yaml_source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


# -- state and execution ---------------------------------------------------------------------


def fetch_models(endpoint: Endpoint, api_key: str | None, timeout: float = 5.0) -> Any:
    """The endpoint's /models answer, or the error asking for it (httpx is imported here: a
    command that calls no endpoint does not pay for it)."""
    from evalhub.adapters.openai_client import fetch_models as fetch

    return fetch(endpoint, api_key, timeout)


def mlflow_state_store(
    uri: str, artifacts: Path, *, shown: str | None = None, create_directory: bool = False
) -> StateStore:
    """The MLflow store at `uri` (artifacts of new experiments under `artifacts`); `shown` is
    the URI as configured, for messages and records; `create_directory` only for the embedded
    default (elsewhere a missing directory is a mistyped URI, not an empty store)."""
    from evalhub.adapters.mlflow_store import MlflowStateStore

    return MlflowStateStore.open(uri, artifacts, shown=shown, create_directory=create_directory)


def mlflow_ui(uri: str, host: str, port: int, cwd: Path) -> int:
    """The MLflow UI over the store at `uri`, in the foreground until Ctrl-C."""
    from evalhub.adapters.mlflow.ui import run_ui

    return run_ui(uri, host, port, str(cwd))


def check_mlflow_ui() -> None:
    """Raise ConfigError (with the install hint) when the MLflow UI is not installed."""
    from evalhub.adapters.mlflow.ui import check_ui_installed

    check_ui_installed()


def local_executor(concurrency: int, protected: Collection[str] = WELL_KNOWN) -> Executor:
    """Units as `evalhub run-unit` processes on this machine, `concurrency` at once; none gets
    a `protected` variable (evalhub.core.secrets)."""
    from evalhub.adapters.executors.local import LocalExecutor

    return LocalExecutor(concurrency, protected=protected)


def dagger_executor(
    project: Project, concurrency: int, protected: Collection[str] = WELL_KNOWN
) -> Executor:
    """Units in their Providers' runner images through a Dagger engine (ConfigError now when
    no engine can be reached: no session and no Dagger CLI; or dagger-io is not installed)."""
    try:
        from evalhub.adapters.executors.dagger import DaggerExecutor
    except ModuleNotFoundError as exc:
        if exc.name != "dagger" and not (exc.name or "").startswith("dagger."):
            raise
        raise ConfigError(
            "the Dagger executor needs the dagger-io SDK, which is not installed",
            "pip install 'evalhub-gitops[dagger]', or use `execution: {executor: local}`",
        ) from None

    return DaggerExecutor(project.config.executors.dagger, concurrency, protected)


def executor(
    project: Project,
    kind: str,
    concurrency: int,
    protected: Collection[str] = WELL_KNOWN,
    executions: Mapping[str, Execution] | None = None,
) -> Executor:
    """The executor named `kind` in a spec or evalhub.yaml; `executions`: each evaluation's
    `execution` (the Kubernetes executor's queue and resources)."""
    if kind == "dagger":
        return dagger_executor(project, concurrency, protected)
    if kind == "kubernetes":
        return kubernetes_executor(project, executions or {}, protected)
    return local_executor(concurrency, protected)


def result_bundle(result_file: Path, output_dir: Path) -> str:
    """A unit's result and output as one line, for a pod's log (`run-unit --bundle`)."""
    from evalhub.adapters.executors.bundle import pack

    return pack(result_file, output_dir)


def kubernetes_executor(
    project: Project, executions: Mapping[str, Execution], protected: Collection[str] = WELL_KNOWN
) -> Executor:
    """Units as Jobs on the cluster of executors.kubernetes (a ConfigError when its settings
    cannot be loaded); `executions`: each evaluation's `execution` (queue, resources)."""
    from evalhub.adapters.executors.k8s_api import connect
    from evalhub.adapters.executors.kubernetes import KubernetesExecutor

    settings = project.config.executors.kubernetes
    api = connect(settings, project.root)
    return KubernetesExecutor(api, settings, project.root, executions, protected)


def kubernetes_manifests(project: Project, job: JobSpec, execution: Execution | None) -> str:
    """The YAML of the Job and ConfigMap the Kubernetes executor would create for `job`; a
    ConfigError when the unit could not run there (an unpinned image, a missing Secret)."""
    from evalhub.adapters.executors.k8s_api import ClusterError
    from evalhub.adapters.executors.kubernetes import manifests

    try:
        return manifests(job, project.config.executors.kubernetes, execution)
    except ClusterError as exc:
        raise ConfigError(f"{job.unit}: {exc.reason}") from None


def environment_store(
    root: Path | None, installer: Literal["auto", "uv", "pip"] = "auto"
) -> EnvironmentStore:
    """The providers' managed environments under `root` (None: ~/.cache/evalhub/envs),
    installed by `installer` (executors.installer)."""
    from evalhub.adapters.environments import EnvironmentStore as Environments

    return Environments(root, installer=installer)


# -- keys ------------------------------------------------------------------------------------


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new signing key pair: (private key PEM, public key PEM)."""
    from evalhub.adapters.signing import generate_key

    return generate_key()


def signer(pem: bytes, origin: str) -> Signer:
    """The Signer of a private key PEM (ConfigError when it is not one evalhub signs with)."""
    from evalhub.adapters.signing import EnvelopeSigner

    return EnvelopeSigner(pem, origin)


def keyring(keys: list[tuple[bytes, str, str]]) -> Keyring:
    """The keyring of public key PEMs, each with its trusted name and where it came from
    (ConfigError naming the first that is not an ECDSA P-256 public key)."""
    from evalhub.adapters.signing import TrustedKeys, load_public_key

    return TrustedKeys([load_public_key(pem, name, origin) for pem, name, origin in keys])


# -- publishing ------------------------------------------------------------------------------


def publisher(
    project: Project, target: str | None = None, insecure: bool | None = None
) -> Publisher:
    """The Publisher of `target` (default: registry.target of evalhub.yaml). A malformed target
    or plain HTTP to a remote registry is a ConfigError; nothing touches the network yet."""
    from evalhub.adapters.oci.publisher import OciPublisher, open_store
    from evalhub.adapters.oci.references import parse_target

    parsed = parse_target(target or project.config.registry.target)
    settings, root = project.config.registry, project.root
    store = open_store(parsed, settings, root, insecure)
    return OciPublisher(store, parsed, lambda image: open_store(image, settings, root, insecure))


def project_publisher(project: Project) -> Publisher:
    """The project's publisher, its setting errors as PublishErrors (apply records a result
    whatever happens to its publication, and publishes it later)."""
    try:
        return publisher(project)
    except ConfigError as exc:
        raise PublishError(f"registry.target: {exc.message}", exc.hint) from exc


def published_result(
    project: Project, reference: str, insecure: bool | None = None
) -> PublishedResult:
    """The result `reference` names: `<target>:TAG`, `<target>@DIGEST`, or a bare tag or digest
    in registry.target. A malformed reference is a ConfigError."""
    from evalhub.adapters.oci.publisher import open_store
    from evalhub.adapters.oci.references import parse_reference, parse_target
    from evalhub.adapters.oci.verify import OciResult

    ref = parse_reference(reference, parse_target(project.config.registry.target))
    store = open_store(ref.target, project.config.registry, project.root, insecure)
    return OciResult(store, ref)


def model_image(project: Project, reference: str, insecure: bool | None = None) -> ModelImage:
    """The model image `reference` names (HOST[:PORT]/REPOSITORY[:TAG]@sha256:HEX, optionally
    with oci://), in its registry, reached with the registry settings of evalhub.yaml."""
    from evalhub.adapters.oci.publisher import model_image_reference, open_store
    from evalhub.adapters.oci.verify import OciModelImage

    text = reference.removeprefix("oci://")
    if "@sha256:" not in text:
        raise ConfigError(
            f"{reference!r} is not pinned by a digest",
            "name the image as HOST[:PORT]/REPOSITORY@sha256:HEX: results are attached to "
            "a digest, and a tag can move",
        )
    ref = model_image_reference(text)
    store = open_store(ref.target, project.config.registry, project.root, insecure)
    return OciModelImage(store, ref)


def default_layout(project: Project) -> str:
    """Where `evalhub publish` copies from by default: the configured layout, else the
    embedded default."""
    configured = project.config.registry.target
    return configured if configured.startswith("oci-layout:") else "oci-layout:.evalhub/oci"


def export_results(
    project: Project, references: list[str], insecure: bool | None = None
) -> dict[str, bytes]:
    """The results `references` name (`<target>:<tag>@<digest>`), with their attestations,
    copied byte for byte into a fresh OCI image layout: its files by relative path
    (oci-layout, index.json, blobs/sha256/<hex>). A result the store lacks is a PublishError."""
    import tempfile

    from evalhub.adapters.oci.layout import OciLayout
    from evalhub.adapters.oci.publisher import open_store
    from evalhub.adapters.oci.references import parse_reference, parse_target
    from evalhub.adapters.oci.store import copy

    default = parse_target(project.config.registry.target)
    with tempfile.TemporaryDirectory(prefix="evalhub-evidence-") as tmp:
        layout = OciLayout(Path(tmp) / "oci", "the evidence layout")
        for reference in references:
            ref = parse_reference(reference, default)
            source = open_store(ref.target, project.config.registry, project.root, insecure)
            copied = copy(source, layout, ref.tag or ref.digest or reference)
            if ref.digest and copied.digest != ref.digest:
                raise PublishError(
                    f"{reference}: the tag now names {copied.digest}, not the digest the "
                    "ledger cites"
                )
        base = Path(tmp) / "oci"
        return {
            p.relative_to(base).as_posix(): p.read_bytes()
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }


# -- the control plane -----------------------------------------------------------------------


def control_plane_app(
    plane: ControlPlane, read_token: str | None, write_token: str | None, max_request_bytes: int
) -> object:
    """The ASGI app of `evalhub serve` (FastAPI) over `plane`; with tokens, every route needs
    one (reads: either; writes: the write token)."""
    try:
        from evalhub.adapters.http_api import Access, build_app
    except ImportError as exc:
        raise ConfigError(
            f"`evalhub serve` needs FastAPI and uvicorn ({exc.name} is missing)",
            "pip install 'evalhub-gitops[serve]'",
        ) from None
    return build_app(plane, Access(read_token, write_token), max_request_bytes)


def serve_http(app: object, host: str, port: int) -> None:
    """Serve an app `control_plane_app` built until interrupted."""
    from fastapi import FastAPI

    from evalhub.adapters.http_api import serve

    assert isinstance(app, FastAPI)
    serve(app, host, port)


def api_client(url: str, token: str | None) -> EvalhubClient:
    """evalhub's client of a control plane at `url` (with a bearer token)."""
    from evalhub.client import EvalhubClient

    return EvalhubClient(url, token)
