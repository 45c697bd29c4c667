"""Turning schema and model errors into Diagnostics a person can act on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance
from pydantic import ValidationError as ModelError

from evalhub.core.errors import Diagnostic
from evalhub.core.source import Path, SourceDocument, format_path
from evalhub.core.spec.base import HINT
from evalhub.core.suggest import did_you_mean, one_of

SECRET_FIELDS = {"api_key", "apikey", "key", "token", "password", "secret", "api_token", "auth"}
# Well-known shapes of credentials, found anywhere in a string (a key inside a system prompt
# is as leaked as a key on its own); a spec or evalhub.yaml holding one leaks it into git.
# Each needs a long random-looking run, so prose ("ask-questions", "a Bearer token") passes.
CREDENTIAL_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (what, re.compile(pattern))
    for what, pattern in (
        ("a private key (PEM)", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
        ("an OpenAI-style API key", r"(?<![\w-])sk-(?:[A-Za-z0-9]+-){0,3}[A-Za-z0-9_]{16,}"),
        ("a bearer token", r"(?i)\bbearer\s+(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}"),
        ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})"),
        ("an AWS access key id", r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
        ("a Hugging Face token", r"(?<![\w-])hf_[A-Za-z0-9]{20,}"),
        ("a Slack token", r"\bxox[abpr]-[\w-]{10,}"),
        ("a GitLab token", r"\bglpat-[\w-]{20,}"),
        ("a JSON web token", r"\beyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]*"),
        # user:password@ (or a token as the user) in any URL; ssh's git@host is no secret.
        ("a URL with credentials", r"(?i)\b(?!ssh://|git\+ssh://)[a-z][a-z0-9+.-]*://[^/\s@]+@"),
    )
)
URL_SECRET_HINT = (
    "credentials never go in a URL you commit: name environment variables instead (a Model's "
    "`api_key_env`; in evalhub.yaml `registry.username_env`, `password_env` or `token_env`; "
    "for MLflow, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
)
SECRET_HINT = (
    "secrets never go in specs: put the value in an environment variable and name the "
    "variable (e.g. `api_key_env: SUPPORT_API_KEY`)"
)

_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing (null)",
}


_RULE_HINTS = (
    ("give exactly one of `endpoint` or `local`", "a served model has `endpoint:`; a model the "
     "framework loads itself has `local:` — keep the one that applies"),
    ("give exactly one of", "keep one of the two fields and remove the other"),
    ("give `revision`", "add `revision: v1` (any label of the model's version), or `image:` "
     "with the model's OCI image pinned by digest (docs/model-images.md)"),
    ("scale.min", "make `min` lower than `max`"),
    ("an evaluation needs", "add `collection: name@version`, a `benchmarks:` list, or both"),
    ("names its adapter's module", "add `config: {module: …}`: the module whose `main` runs "
     "the adapter, importable from the repository or installed by the requirements"),
    ("requirements pin the SDK", "add the SDK to `requirements`, pinned with `==`"),
    ("the ledger directory must be", "write a path relative to the repository, e.g. results"),
)  # fmt: skip


def _rule_hint(message: str) -> str:
    """The fix for a rule that spans fields (pydantic model validators)."""
    for start, hint in _RULE_HINTS:
        if message.startswith(start) or start in message:
            return hint
    return "see the field descriptions in schemas/"


def _branch_errors(error: ValidationError) -> list[ValidationError]:
    """The errors of the anyOf branch that was meant: not the `null` one unless the value is
    null; among several, the most relevant."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)
    meant = [
        errors
        for errors in branches.values()
        if not (
            len(errors) == 1
            and errors[0].validator == "type"
            and errors[0].validator_value == "null"
        )
    ]
    if not meant:
        return [min(error.context or [], key=relevance)] if error.context else []
    return min(meant, key=lambda errors: relevance(min(errors, key=relevance)))


def _drop_typo_duplicates(found: list[Diagnostic]) -> list[Diagnostic]:
    """A misspelt required field is one mistake: keep "unknown field 'servd_name' — did you
    mean 'served_name'?" and drop the "missing required field 'served_name'" beside it."""
    unknown = {
        (d.path.rpartition(".")[0], d.path.rpartition(".")[2])
        for d in found
        if d.message.startswith("unknown field")
    }
    kept = []
    for d in found:
        if d.message.startswith("missing required field"):
            parent, _, name = d.path.rpartition(".")
            if any(p == parent and did_you_mean(u, [name]) for p, u in unknown):
                continue
        kept.append(d)
    return kept


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


_CREDENTIALS = re.compile(r"(://)[^/\s@]+@")


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        if credential_in(value) and not _CREDENTIALS.search(value):
            return "a string holding a credential"  # never echo a secret back
        value = _CREDENTIALS.sub(r"\1***@", value)  # never echo a password back
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Diagnoser:
    """Makes diagnostics for one document."""

    def __init__(self, doc: SourceDocument, prefix: Path = ()) -> None:
        self.doc = doc
        self.prefix = prefix

    def at(
        self,
        path: Path,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        where: Path | None = None,
    ) -> Diagnostic:
        """A diagnostic about `path`, located at `where` (default: `path` itself)."""
        full = (*self.prefix, *path)
        located = full if where is None else (*self.prefix, *where)
        line, column = self.doc.position(located, key=key)
        return Diagnostic(self.doc.file, line, column, format_path(full), message, hint)

    # -- JSON Schema --------------------------------------------------------------------------

    def schema_errors(self, validator: Draft202012Validator, data: Any) -> list[Diagnostic]:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
        out: list[Diagnostic] = []
        for error in errors:
            out.extend(self._from_schema_error(error))
        return _drop_typo_duplicates(out)

    def _from_schema_error(
        self, error: ValidationError, inherited: str = ""
    ) -> Iterator[Diagnostic]:
        path: Path = tuple(error.absolute_path)
        schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
        value: Any = error.instance
        kind: Any = error.validator
        limit: Any = error.validator_value
        own_hint = schema.get(HINT) or inherited
        if kind in ("anyOf", "oneOf") and error.context:
            # Optional fields are `anyOf: [X, null]`: report every reason the value fails X,
            # with X's hint (which pydantic puts beside the anyOf).
            for sub in _branch_errors(error):
                yield from self._from_schema_error(sub, own_hint)
            return
        if kind == "additionalProperties":
            allowed = list(schema.get("properties", {}))
            for name in sorted(set(value) - set(allowed)):
                yield self.at(
                    (*path, name),
                    f"unknown field {name!r}",
                    self._unknown_hint(name, allowed),
                    key=True,
                )
            return
        if kind == "required":
            missing = re.match(r"'(.+)' is a required property", error.message)
            name = missing.group(1) if missing else str(error.message)
            about = schema.get("properties", {}).get(name, {}).get("description", "")
            hint = f"add `{name}:`" + (f" ({about})" if about else "")
            yield self.at(
                (*path, name), f"missing required field {name!r}", hint, key=True, where=path
            )
            return
        if kind == "type":
            want = limit
            wanted = " or ".join(
                _TYPE_NAMES.get(str(t), str(t))
                for t in (want if isinstance(want, list) else [want])
            )
            hint = own_hint or f"write {wanted} here"
            if isinstance(value, str) and want in ("number", "integer"):
                hint = "write the number without quotes"
            elif isinstance(value, str) and want == "array":
                hint = f"write a list, e.g. [{value}] or one `- {value}` line per item"
            elif value is None:
                hint = "give a value after the colon, or remove the field"
            yield self.at(path, f"expected {wanted}, got {describe(value)}", hint)
            return
        if kind in ("enum", "const"):
            options = [str(o) for o in (limit if kind == "enum" else [limit])]
            hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
            yield self.at(
                path,
                f"{describe(value)} is not allowed here; expected {' or '.join(options)}",
                hint or f"use one of: {one_of(options)}",
            )
            return
        if kind == "pattern":
            yield self._pattern(path, value, own_hint)
            return
        limits = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }
        if kind in limits:
            bound = f"{limits[kind]} {_number(limit)}"
            yield self.at(
                path,
                f"must be {bound}, got {_number(value)}",
                own_hint or f"use a value {bound}",
            )
            return
        if kind == "minItems":
            yield self.at(path, f"needs at least {limit} item(s)", "add an entry")
            return
        if kind == "minLength":
            yield self.at(path, "must not be empty", "write a value")
            return
        if kind == "maxLength":
            yield self.at(path, f"is longer than {limit} characters", "shorten it")
            return
        yield self.at(path, error.message, own_hint or "see the field's description in schemas/")

    def _pattern(self, path: Path, value: Any, hint: str) -> Diagnostic:
        field = str(path[-1]) if path else ""
        if field.endswith("_env") and isinstance(value, str) and not value.isupper():
            return self.at(
                path,
                "this looks like a secret value, not the name of an environment variable",
                SECRET_HINT,
            )
        if field == "image" and isinstance(value, str) and "@sha256:" not in value:
            return self.at(
                path,
                f"{describe(value)} is not pinned by a digest: a tag can be moved to other "
                "bytes, so it cannot say which model was evaluated",
                hint,
            )
        if field == "adapter" and isinstance(value, str):
            from evalhub.core.spec.provider import BUILTIN_ADAPTERS

            close = did_you_mean(value, BUILTIN_ADAPTERS)
            hint = f"{close} " + hint if close else hint
        return self.at(path, f"{describe(value)} is not a valid {field or 'value'}", hint)

    @staticmethod
    def _unknown_hint(name: str, allowed: list[str]) -> str:
        if name.lower() in SECRET_FIELDS:
            return SECRET_HINT
        return did_you_mean(name, allowed) or f"allowed fields here: {one_of(allowed)}"

    # -- pydantic ----------------------------------------------------------------------------

    def model_errors(self, exc: ModelError) -> list[Diagnostic]:
        out = []
        for item in exc.errors(include_url=False):
            message = str(item["msg"]).removeprefix("Value error, ")
            out.append(self.at(tuple(item["loc"]), message, _rule_hint(message)))
        return out

    # -- values that leak secrets ---------------------------------------------------------------

    def leaked_secrets(self, data: Any, path: Path = ()) -> Iterator[Diagnostic]:
        """Credentials anywhere in the document: in values (whole or part) and in keys. The
        message names the kind of credential, never the value."""
        if isinstance(data, dict):
            for key, value in data.items():
                what = credential_in(key) if isinstance(key, str) else None
                if what:
                    # The path names the key; shown, it would repeat the credential.
                    yield self.at(
                        (*path, "{redacted}"), f"this key looks like a credential ({what})",
                        _hint_for(what), key=True, where=(*path, key),
                    )  # fmt: skip
                yield from self.leaked_secrets(value, (*path, key))
        elif isinstance(data, list):
            for index, value in enumerate(data):
                yield from self.leaked_secrets(value, (*path, index))
        elif isinstance(data, str) and (what := credential_in(data)):
            yield self.at(path, f"this value looks like a credential ({what})", _hint_for(what))


def _hint_for(what: str) -> str:
    return URL_SECRET_HINT if "URL" in what else SECRET_HINT


def credential_in(text: str) -> str | None:
    """What kind of credential `text` holds somewhere, if any (never the credential)."""
    for what, shape in CREDENTIAL_SHAPES:
        if shape.search(text):
            return what
    return None
