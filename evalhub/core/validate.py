"""Documents -> typed specs, or diagnostics naming file, line, column, field and fix.

Each document goes through its kind's JSON Schema first (for editor-grade messages) and then its
pydantic model (for the rules a schema cannot say). Cross-document rules live in references.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel
from pydantic import ValidationError as ModelError

from evalhub.core.diagnose import Diagnoser, describe
from evalhub.core.errors import Diagnostic
from evalhub.core.references import check_references
from evalhub.core.schema import schema_for
from evalhub.core.source import SourceDocument
from evalhub.core.spec import API_VERSION, KINDS, Collection, Evaluation, Model, Policy, Provider
from evalhub.core.specset import Located, SpecSet
from evalhub.core.suggest import did_you_mean, one_of


@cache
def validator_for(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema_for(name))


@dataclass
class Validation:
    """What validation found: the specs that are sound and every problem."""

    specs: SpecSet = field(default_factory=SpecSet)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    documents: int = 0
    # Not problems, but worth saying: a provider with requirements and no lock.
    notes: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.diagnostics


def parse_model(
    doc: SourceDocument, model: type[BaseModel], schema: str, data: Any = None
) -> tuple[Any, list[Diagnostic]]:
    """Validate one document's data against a schema and its model.

    A valid document is the common case: the model checks it in strict mode (no coercion, so it
    accepts exactly what the schema accepts) at a fraction of the cost of JSON Schema. Only a
    document the model rejects goes through JSON Schema, for messages an editor would give."""
    data = doc.data if data is None else data
    diagnoser = Diagnoser(doc)
    try:
        spec = model.model_validate(data, strict=True)
    except ModelError:
        spec = None
    if spec is not None:
        leaks = list(diagnoser.leaked_secrets(data))
        return (None, leaks) if leaks else (spec, [])
    problems = diagnoser.schema_errors(validator_for(schema), data)
    reported = {p.path for p in problems}
    problems.extend(d for d in diagnoser.leaked_secrets(data) if d.path not in reported)
    if problems:
        return None, problems
    try:
        return model.model_validate(data), []
    except ModelError as exc:
        return None, diagnoser.model_errors(exc)


def check_envelope(doc: SourceDocument) -> list[Diagnostic]:
    """apiVersion and kind come first: without them no schema applies."""
    diagnoser = Diagnoser(doc)
    data = doc.data
    if not isinstance(data, dict):
        return [
            diagnoser.at(
                (),
                "a spec document must be a mapping with apiVersion, kind, metadata and spec",
                "start the document with `apiVersion: evalhub.dev/v1` and `kind: …`",
            )
        ]
    if "apiVersion" not in data and "kind" not in data:
        return [
            diagnoser.at(
                (),
                "not an evalhub document: it has no apiVersion or kind",
                "add `apiVersion: evalhub.dev/v1` and a kind; if this YAML file is not a spec "
                "(a framework's task file, say), list it under `exclude:` in evalhub.yaml",
            )
        ]
    problems = []
    version = data.get("apiVersion")
    if version != API_VERSION:
        message = (
            "missing apiVersion"
            if version is None
            else f"unsupported apiVersion {version!r}; this evalhub reads {API_VERSION}"
        )
        problems.append(
            diagnoser.at(("apiVersion",), message, f"write `apiVersion: {API_VERSION}`")
        )
    kind = data.get("kind")
    if kind is not None and not isinstance(kind, str):
        problems.append(
            diagnoser.at(
                ("kind",),
                f"kind must be one name, got {describe(kind)}",
                f"kinds: {one_of(KINDS)}",
            )
        )
    elif kind not in KINDS:
        message = "missing kind" if kind is None else f"unknown kind {kind!r}"
        hint = (did_you_mean(kind, KINDS) if kind else "") or f"kinds: {one_of(KINDS)}"
        problems.append(diagnoser.at(("kind",), message, hint))
    return problems


def validate_documents(
    documents: list[SourceDocument],
    trusted_key_names: frozenset[str] | None = None,
    *,
    complete: bool = True,
) -> Validation:
    """Validate every document, then the references between them. Collects all problems.

    `complete` is False when some file could not be read at all (a YAML syntax error, say):
    then references are not checked, since their targets may be in the unreadable file."""
    result = Validation(documents=len(documents))
    typed: list[Located[Any]] = []
    for doc in documents:
        problems = check_envelope(doc)
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if isinstance(kind, str) and kind in KINDS:
            # The kind is known: check the rest of the document too, even when apiVersion is
            # wrong (that one problem is already reported).
            data = {**doc.data, "apiVersion": API_VERSION}
            spec, more = parse_model(doc, KINDS[kind], kind.lower(), data)
            problems.extend(more)
            if spec is not None and not problems:
                typed.append(Located(spec, doc))
            else:
                result.specs.invalid.add(_kind_and_name(doc.data))
        result.diagnostics.extend(problems)
    result.diagnostics.extend(_collect(typed, result.specs))
    if complete:
        result.diagnostics.extend(check_references(result.specs, trusted_key_names))
    result.diagnostics.sort()
    return result


def _collect(typed: list[Located[Any]], specs: SpecSet) -> list[Diagnostic]:
    """File the specs by kind and name; a second document with the same name is an error."""
    problems = []
    tables: dict[type[BaseModel], dict[Any, Located[Any]]] = {
        Model: specs.models,
        Provider: specs.providers,
        Collection: specs.collections,
        Evaluation: specs.evaluations,
        Policy: specs.policies,
    }
    for item in typed:
        spec = item.spec
        key = (
            (spec.metadata.name, spec.spec.version)
            if isinstance(spec, Collection)
            else spec.metadata.name
        )
        table = tables[type(spec)]
        if key in table:
            first = table[key].doc
            line, _ = first.position(("metadata", "name"))
            what = f"{spec.kind} {spec.metadata.name!r}" + (
                f" version {spec.spec.version}" if isinstance(spec, Collection) else ""
            )
            problems.append(
                Diagnoser(item.doc).at(
                    ("metadata", "name"),
                    f"{what} is defined twice (first in {first.file}:{line})",
                    "rename one of them"
                    + (", or give it a new version" if isinstance(spec, Collection) else ""),
                )
            )
            continue
        table[key] = item
    return problems


def _kind_and_name(data: dict[str, Any]) -> tuple[str, str]:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return str(data["kind"]), str(name)
