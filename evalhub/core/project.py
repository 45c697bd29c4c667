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


class KubernetesSettings(Strict):
    namespace: str = Field(default="evalhub", description="Namespace of the Jobs.")
    queue: str | None = Field(default=None, description="Default Kueue LocalQueue.")
    image: str | None = Field(default=None, description="Default image running evalhub run-unit.")


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
