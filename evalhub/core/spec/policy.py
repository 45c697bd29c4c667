"""Kind `Policy`: what a model needs before it may be promoted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evalhub.core.spec.base import Duration, Metadata, Name, Strict, hint


class PolicySpec(Strict):
    description: str = Field(default="", description="What this policy protects.")
    model: Name | None = Field(default=None, description="The Model this policy promotes.")
    require: list[Name] = Field(
        min_length=1, description="Evaluations that must have a fresh, signed, passing result."
    )
    signed_by: list[str] = Field(
        default_factory=list,
        description="Keys whose signature is required: key ids (sha256:<hex>) or names of "
        "trusted keys in evalhub.yaml. Empty: any trusted key.",
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
