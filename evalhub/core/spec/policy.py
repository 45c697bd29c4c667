"""Kind `Policy`: what a model needs before it may be promoted."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from evalhub.core.spec.base import Duration, Metadata, Name, Strict, hint

KeyId = Annotated[
    str,
    Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        json_schema_extra=hint("copy the key id `evalhub keys list` shows (sha256:<64 hex>)"),
    ),
]


class PinnedKey(Strict):
    """A trusted key pinned by name and id: the signer must be the key of that name in
    evalhub.yaml and have that id, so re-pointing the name at another key file does not
    satisfy the Policy."""

    name: Name = Field(description="The trusted key's name in evalhub.yaml (signing).")
    key_id: KeyId = Field(description="Its key id, as `evalhub keys list` shows it.")

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


def accepts(signed_by: list[str | PinnedKey], name: str, key_id: str) -> bool:
    """Whether a Policy's `signed_by` accepts the key `name` with `key_id` (empty: any)."""
    if not signed_by:
        return True
    for signer in signed_by:
        if isinstance(signer, PinnedKey):
            if (signer.name, signer.key_id) == (name, key_id):
                return True
        elif signer in (name, key_id):
            return True
    return False


class PolicySpec(Strict):
    description: str = Field(default="", description="What this policy protects.")
    model: Name | None = Field(default=None, description="The Model this policy promotes.")
    require: list[Name] = Field(
        min_length=1, description="Evaluations that must have a fresh, signed, passing result."
    )
    signed_by: list[str | PinnedKey] = Field(
        default_factory=list,
        description="Keys whose signature is required: key ids (sha256:<hex>), names of "
        "trusted keys in evalhub.yaml, or a name pinned to its id ({name: ci, key_id: "
        "sha256:…}). Empty: any trusted key. A bare name accepts whatever key evalhub.yaml "
        "lists under it at the time; an id (alone or pinned) does not move.",
        json_schema_extra=hint("write a key id such as sha256:ab12… or a trusted key's name"),
    )
    max_age: Duration | None = Field(
        default=None, description="Results older than this do not count (e.g. 30d)."
    )


class Policy(Strict):
    """A promotion policy."""

    apiVersion: Literal["evalhub.dev/v1"]
    kind: Literal["Policy"]
    metadata: Metadata
    spec: PolicySpec
