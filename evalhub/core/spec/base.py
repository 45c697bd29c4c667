"""What every spec document shares: the Kubernetes-style envelope and the field types."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

API_VERSION = "evalhub.dev/v1"

HINT = "x-evalhub-hint"  # schema keyword carrying the fix for a value that fails its constraint


def hint(text: str) -> dict[str, Any]:
    return {HINT: text}


class Strict(BaseModel):
    """Unknown fields are errors and parsed specs never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        json_schema_extra=hint(
            "names are lower-case letters, digits and '-', 1-63 characters, "
            "starting and ending with a letter or digit (e.g. support-assistant)"
        ),
    ),
]
BenchmarkId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        json_schema_extra=hint(
            "benchmark ids are letters, digits, '.', '_' and '-' (e.g. arc_easy)"
        ),
    ),
]
EnvVarName = Annotated[
    str,
    Field(
        pattern=r"^[A-Z_][A-Z0-9_]{0,127}$",
        json_schema_extra=hint(
            "name the environment variable that holds the secret (e.g. SUPPORT_API_KEY), "
            "never the secret itself"
        ),
    ),
]
Score = Annotated[
    float,
    Field(ge=0.0, le=1.0, json_schema_extra=hint("scores are normalised to [0, 1]: use e.g. 0.7")),
]
Duration = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]{0,5}[mhdw]$",
        json_schema_extra=hint("durations are a number and a unit m, h, d or w (e.g. 30d, 12h)"),
    ),
]
Params = Annotated[
    dict[str, JsonValue],
    Field(description="Free-form parameters handed to the adapter; part of the unit's identity."),
]
Labels = dict[str, str]


class Metadata(Strict):
    """Kubernetes-style metadata. Only `name` takes part in identity."""

    name: Name = Field(description="The document's name, unique per kind (lower-case, '-').")
    labels: Labels = Field(
        default_factory=dict, description="Labels for selecting documents; never part of identity."
    )
    annotations: Labels = Field(
        default_factory=dict,
        description="Free-form notes for people and tools; never part of identity.",
    )
