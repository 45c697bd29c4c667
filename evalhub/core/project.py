"""The project settings file, evalhub.yaml. Nothing here is part of any identity."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from evalhub.core.spec.base import EnvVarName, Name, Strict

PROJECT_FILE = "evalhub.yaml"
STATE_DIR = ".evalhub"


def inside_repository(path: str) -> bool:
    """Whether a relative path written in evalhub.yaml stays inside the repository: not
    absolute (POSIX or Windows), no `..` step."""
    parts = path.replace("\\", "/").split("/")
    return not (path.startswith("/") or ".." in parts or (len(path) > 1 and path[1] == ":"))


def _inside(path: str) -> str:
    # Specs are the project's: reading /etc or a sibling checkout would plan (and sign)
    # documents nobody reviews in this repository.
    if not inside_repository(path):
        raise ValueError("must be a path inside the repository (relative, no '..')")
    return path


RepositoryPath = Annotated[str, AfterValidator(_inside)]


class TrustedKey(Strict):
    """A public key whose signatures evalhub accepts."""

    name: Name = Field(description="A short name Policies can refer to (e.g. ci).")
    path: str = Field(min_length=1, description="The public key file (PEM), relative to the repo.")


class Signing(Strict):
    key_file: str = Field(
        default=".evalhub/keys/evalhub.key",
        description="The private signing key (PEM). Never commit it.",
    )
    key_env: EnvVarName | None = Field(
        default=None,
        description="An environment variable holding the private key PEM (for CI); "
        "preferred over key_file when set.",
    )
    public_key: str = Field(
        default="evalhub.pub",
        description="Where `evalhub keys generate` writes the public key (commit it); trusted "
        "by `evalhub verify` when `trusted_keys` is empty.",
    )
    trusted_keys: list[TrustedKey] = Field(
        default_factory=list,
        description="Public keys whose signatures are trusted; each name at most once (Policies "
        "name keys in signed_by).",
    )

    @field_validator("trusted_keys")
    @classmethod
    def _unique_names(cls, keys: list[TrustedKey]) -> list[TrustedKey]:
        # Two keys under one name would both satisfy a Policy's `signed_by: [name]`: a second
        # "ci" key added next to the real one would promote whatever it signs.
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            earlier = first.setdefault(key.name, index)
            if earlier != index:
                error = PydanticCustomError(
                    "duplicate_key_name",
                    f"the name {key.name!r} is already used by signing.trusted_keys[{earlier}]: "
                    "trusted key names must be unique; rename one of them",
                )
                detail = InitErrorDetails(type=error, loc=(index, "name"), input=key.name)
                raise ValidationError.from_exception_data("Signing", [detail])
        return keys


class Ledger(Strict):
    dir: str = Field(
        default="results",
        min_length=1,
        description="Where results are written, relative to the repository root (inside it).",
    )
    sign_commits: bool = Field(
        default=False,
        description="Sign ledger commits (SSH) by default; `apply --no-sign` overrides it.",
    )
    require_signed_commits: bool = Field(
        default=False,
        description="`evalhub audit` fails every ledger revision whose commit is not signed by an "
        "allowed signer (see allowed_signers).",
    )
    allowed_signers: str | None = Field(
        default=None,
        description="git's allowed-signers file (`gpg.ssh.allowedSignersFile`) listing who may "
        "sign ledger commits, relative to the repository root; default: git's own setting.",
    )

    @field_validator("dir")
    @classmethod
    def _inside_the_repository(cls, value: str) -> str:
        if not inside_repository(value):
            raise ValueError("the ledger directory must be a path inside the repository")
        return value


class Registry(Strict):
    target: str = Field(
        default="oci-layout:.evalhub/oci",
        description="Where results are published: `oci://host[:port]/repository` or "
        "`oci-layout:DIR` (an OCI image layout directory).",
    )
    insecure: bool = Field(
        default=False, description="Plain HTTP; allowed only for loopback registries."
    )
    username_env: EnvVarName | None = Field(default=None, description="Env var with the user.")
    password_env: EnvVarName | None = Field(default=None, description="Env var with the password.")
    token_env: EnvVarName | None = Field(
        default=None, description="Env var with a bearer token (instead of user and password)."
    )
    docker_config: str | None = Field(
        default=None,
        description="A docker config.json with credentials (default: $DOCKER_CONFIG/config.json "
        "or ~/.docker/config.json); used when no env vars are named.",
    )
    timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=600,
        description="Seconds to wait for the registry to connect and to answer each request; "
        "a registry that does not answer in time fails the publish (the result stays pending).",
    )


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class Toleration(Strict):
    """A Kubernetes toleration of the units' pods (e.g. for a GPU node pool's taint)."""

    key: str | None = Field(default=None, min_length=1, description="The taint key.")
    operator: Literal["Equal", "Exists"] = Field(default="Equal", description="Equal or Exists.")
    value: str | None = Field(default=None, description="The taint value (with Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint effect tolerated (default: all)."
    )


class Compute(Strict):
    """Kubernetes quantities a unit's container asks for when its Provider does not say."""

    cpu: str | None = Field(
        default=None, pattern=r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$", description="e.g. 1, 500m."
    )
    memory: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        description="e.g. 512Mi, 4Gi.",
    )


class KubernetesSettings(Strict):
    """Where and how the Kubernetes executor runs units as Jobs. Runtime only: never identity."""

    kubeconfig: str | None = Field(
        default=None,
        min_length=1,
        description="A kubeconfig file (relative to the repository or absolute); default: the "
        "in-cluster service account, then $KUBECONFIG, then ~/.kube/config.",
    )
    context: str | None = Field(
        default=None, min_length=1, description="The kubeconfig context (default: current)."
    )
    namespace: str = Field(
        default="evalhub", pattern=DNS_LABEL, description="Namespace of the Jobs."
    )
    service_account: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="The units' pods' ServiceAccount (default: the namespace's `default`); "
        "its token is never mounted: a unit does not talk to the API server.",
    )
    queue: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="Default Kueue LocalQueue (an evaluation's `execution.queue` overrides it); "
        "with a queue, Jobs are created suspended and Kueue admits them.",
    )
    priority_class: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="Kueue WorkloadPriorityClass of the Jobs (kueue.x-k8s.io/priority-class).",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        description="Image running `evalhub run-unit` for Providers that name no `image` "
        "(pin a digest: image@sha256:...).",
    )
    allow_unpinned_images: bool = Field(
        default=False,
        description="Run images named by tag only. Off by default: a tag can move, so the "
        "same identity could run different code.",
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets with registry credentials for the image."
    )
    api_key_secret: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="The Secret holding the Models' API keys, one key per `api_key_env` name; "
        "pods read them through secretKeyRef, so no key value is in any object evalhub creates.",
    )
    ttl_seconds_after_finished: int = Field(
        default=86400, ge=0, description="Seconds a finished Job (and its pod and ConfigMap) stays."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the units' pods must match."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints the units' pods tolerate."
    )
    requests: Compute = Field(
        default_factory=Compute, description="Requests when the Provider names no resources."
    )
    limits: Compute = Field(
        default_factory=Compute, description="Limits when the Provider names no resources."
    )


class DaggerSettings(Strict):
    """The Dagger executor: each unit in its Provider's runner image (evalhub.core.runner_image)."""

    base_image: str = Field(
        default="python:3.11-slim",
        min_length=1,
        description="Base of the runner images evalhub builds (pin a digest for reproducible "
        "images, e.g. python:3.11-slim@sha256:...); a Provider's own `image` replaces it.",
    )
    cli: str | None = Field(
        default=None,
        description="The Dagger CLI that starts an engine session (default: `dagger` on PATH); "
        "not needed under `dagger run`, which provides the session.",
    )
    connect_timeout_seconds: float = Field(
        default=10, gt=0, le=600, description="Seconds to wait for the engine to answer."
    )


class Executors(Strict):
    default: Literal["local", "dagger", "kubernetes"] = Field(
        default="local", description="Executor for evaluations that do not name one."
    )
    concurrency: int = Field(default=2, ge=1, le=256, description="Units run at once.")
    timeout_seconds: float = Field(default=3600, gt=0, description="Default per-unit time limit.")
    environments_dir: str | None = Field(
        default=None,
        description="Cache of the providers' managed environments (default ~/.cache/evalhub).",
    )
    installer: Literal["auto", "uv", "pip"] = Field(
        default="auto",
        description="What installs the managed environments: auto (uv, with pip's "
        "configuration translated, or pip when uv is missing or a pip setting has no uv "
        "equivalent), uv, or pip. EVALHUB_INSTALLER overrides it.",
    )
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    dagger: DaggerSettings = Field(default_factory=DaggerSettings)


class Serve(Strict):
    """`evalhub serve`: who may call it. Runtime settings only."""

    read_token_env: EnvVarName | None = Field(
        default=None,
        description="Env var holding the bearer token that may read (list, get, logs).",
    )
    write_token_env: EnvVarName | None = Field(
        default=None,
        description="Env var holding the bearer token that may also submit and cancel jobs. "
        "Binding a non-loopback address requires it.",
    )
    max_request_bytes: int = Field(
        default=1 << 20, ge=1024, le=64 << 20, description="Largest request body accepted."
    )


class ProjectConfig(Strict):
    """evalhub.yaml at the repository root. Runtime settings only: never part of identity."""

    specs: list[RepositoryPath] = Field(
        default_factory=lambda: ["evals"],
        min_length=1,
        description="Directories (or files) holding spec documents, relative to the repo root.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns (relative to the repo root) of YAML files that are not "
        "evalhub documents, e.g. lm-eval task definitions.",
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI (the environment variable MLFLOW_TRACKING_URI overrides "
        "it); default: SQLite under .evalhub/ (no server needed).",
    )
    registry: Registry = Field(default_factory=Registry)
    signing: Signing = Field(default_factory=Signing)
    ledger: Ledger = Field(default_factory=Ledger)
    executors: Executors = Field(default_factory=Executors)
    serve: Serve = Field(default_factory=Serve)
