"""JSON Schemas (draft 2020-12) generated from the spec models; schemas/ holds them checked in."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from evalhub.core.spec import KINDS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://evalhub.dev/schemas/v1/"


class _Generator(GenerateJsonSchema):
    # Titles derived from field names add noise to every editor tooltip; descriptions carry docs.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def generate(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema(schema_generator=_Generator)
    schema.pop("title", None)
    return {"$schema": DIALECT, "$id": f"{SCHEMA_BASE}{name}.json", **schema}


def schema_models() -> dict[str, type[BaseModel]]:
    """File stem -> model, for every schema that schemas/ holds."""
    from evalhub.core.ledger import LedgerEntry
    from evalhub.core.project import ProjectConfig

    models: dict[str, type[BaseModel]] = {kind.lower(): model for kind, model in KINDS.items()}
    models["project"] = ProjectConfig
    models["ledger"] = LedgerEntry
    return models


@cache
def schema_for(name: str) -> dict[str, Any]:
    return generate(schema_models()[name], name)


def render(schema: dict[str, Any]) -> str:
    """The checked-in text of a schema: stable, so regenerating changes nothing."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered_schemas() -> dict[str, str]:
    """File name -> text for every schema under schemas/."""
    return {f"{name}.json": render(schema_for(name)) for name in schema_models()}
