"""Dagger's GraphQL API schema, as the installed `dagger-io` SDK was generated from it.

dagger/client/gen.py is generated from the engine's schema: one class per object, input, enum
and scalar, one method per field, each calling `_select("<field>", [Arg("<arg>", ...)])` with
its return type in `execute(<type>)`. This reads that back into a graphql-core schema, so the
session fake answers the SDK's introspection with the very API it was built for, and validates
every query the SDK sends against it before running it.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import inspect
import types
import typing
from typing import Any

import graphql as gql
from dagger.client import base, gen

SCALARS: dict[Any, gql.GraphQLScalarType] = {
    str: gql.GraphQLString,
    int: gql.GraphQLInt,
    bool: gql.GraphQLBoolean,
    float: gql.GraphQLFloat,
}


class _Builder:
    def __init__(self) -> None:
        self.named: dict[str, gql.GraphQLNamedType] = {}
        self.source = ast.parse(inspect.getsource(gen))
        self.classes = {
            node.name: node for node in self.source.body if isinstance(node, ast.ClassDef)
        }
        self.namespace = vars(gen)

    # -- types ---------------------------------------------------------------------------

    def output(self, hint: Any, owner: type) -> gql.GraphQLOutputType:
        nullable, hint = _optional(hint)
        kind = self._named_output(hint, owner)
        return kind if nullable else gql.GraphQLNonNull(kind)

    def _named_output(self, hint: Any, owner: type) -> Any:
        if typing.get_origin(hint) is list:
            return gql.GraphQLList(self.output(typing.get_args(hint)[0], owner))
        if _is_self(hint):
            hint = owner
        return self.named_type(hint)

    def input(self, hint: Any, has_default: bool, owner: type = object) -> gql.GraphQLInputType:
        nullable, hint = _optional(hint)
        hint = owner if _is_self(hint) else self.real(hint)
        if typing.get_origin(hint) is list:
            inner = self.input(typing.get_args(hint)[0], False, owner)
            kind: Any = gql.GraphQLList(inner)
        elif isinstance(hint, type) and issubclass(hint, base.Type):
            # An object argument is sent as its ID.
            kind = self.scalar(f"{hint.__name__.lstrip('_').removesuffix('Client')}ID")
            if hint is base.Type:
                kind = gql.GraphQLID
        else:
            kind = self.named_type(hint)
        return kind if nullable or has_default else gql.GraphQLNonNull(kind)

    def scalar(self, name: str) -> gql.GraphQLScalarType:
        if name not in self.named:
            self.named[name] = gql.GraphQLScalarType(name)
        return typing.cast(gql.GraphQLScalarType, self.named[name])

    def real(self, hint: Any) -> Any:
        """gen.py's own class for a forward reference (beartype wraps some in proxies)."""
        name = getattr(hint, "__name__", None)
        if isinstance(name, str) and isinstance(self.namespace.get(name), type):
            return self.namespace[name]
        return hint

    def named_type(self, hint: Any) -> Any:
        hint = self.real(hint)
        if hint is None or hint is type(None):
            return self.scalar("Void")
        if hint in SCALARS:
            return SCALARS[hint]
        name = hint.__name__
        if name in self.named:
            return self.named[name]
        if issubclass(hint, base.Scalar):
            return self.scalar(name)
        if issubclass(hint, enum.Enum):
            values = {m.name: gql.GraphQLEnumValue(m.name) for m in hint}
            self.named[name] = gql.GraphQLEnumType(name, values)
        elif issubclass(hint, base.Input):
            self.named[name] = gql.GraphQLInputObjectType(
                name, functools.partial(self._input_fields, hint)
            )
        elif _is_protocol(hint):
            self.named[name] = gql.GraphQLInterfaceType(
                name, functools.partial(self._fields, self._client_of(hint))
            )
        else:
            # Objects are not declared as implementing Node, Exportable or Syncer: their ids
            # and syncs return their own ID scalars, which standard GraphQL validation refuses
            # for an interface field of type ID! (the engine uses its own rule for that).
            self.named[name] = gql.GraphQLObjectType(name, functools.partial(self._fields, hint))
        return self.named[name]

    def _client_of(self, protocol: type) -> type:
        client: type = self.namespace[f"_{protocol.__name__}Client"]
        return client

    def _input_fields(self, cls: type) -> dict[str, gql.GraphQLInputField]:
        hints = typing.get_type_hints(cls, self.namespace)
        fields = {}
        for f in dataclasses.fields(cls):
            has_default = f.default is not dataclasses.MISSING
            fields[f.name] = gql.GraphQLInputField(self.input(hints[f.name], has_default))
        return fields

    # -- fields --------------------------------------------------------------------------

    def _methods(self, cls: type) -> dict[str, ast.AsyncFunctionDef | ast.FunctionDef]:
        found: dict[str, ast.AsyncFunctionDef | ast.FunctionDef] = {}
        for klass in reversed(cls.__mro__):
            node = self.classes.get(klass.__name__)
            if node is None:
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    field = _selected(item)
                    if field is not None:
                        found[field] = item
        return found

    def _fields(self, cls: type) -> dict[str, gql.GraphQLField]:
        fields = {}
        for name, node in self._methods(cls).items():
            method = getattr(cls, node.name)
            hints = typing.get_type_hints(method, self.namespace)
            params = inspect.signature(method).parameters
            args = {}
            for arg_name, param_name in _arguments(node):
                param = params[param_name]
                has_default = param.default is not inspect.Parameter.empty
                args[arg_name] = gql.GraphQLArgument(
                    self.input(hints[param_name], has_default, cls)
                )
            fields[name] = gql.GraphQLField(self._returns(cls, name, node, hints), args)
        return fields

    def _returns(self, cls: type, name: str, node: ast.AST, hints: dict[str, Any]) -> Any:
        kind = _executed(node)
        own_id = f"{cls.__name__.lstrip('_').removesuffix('Client')}ID"
        if name == "id":
            return gql.GraphQLNonNull(gql.GraphQLID if own_id == "NodeID" else self.scalar(own_id))
        if kind == "sync":
            return gql.GraphQLNonNull(self.scalar(own_id))
        if kind == "list":
            element = _listed(node)
            return gql.GraphQLNonNull(
                gql.GraphQLList(gql.GraphQLNonNull(self.named_type(self.namespace[element])))
            )
        if isinstance(kind, str):
            return self.output(eval(kind, self.namespace), cls)  # a type expression of gen.py
        return self.output(hints["return"], cls)


def _is_self(hint: Any) -> bool:
    import typing_extensions

    return hint is typing.Self or hint is typing_extensions.Self


def _optional(hint: Any) -> tuple[bool, Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return True, rest[0]
    return False, hint


def _is_protocol(cls: type) -> bool:
    return typing.Protocol in cls.__bases__


def _selected(node: ast.AST) -> str | None:
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("_select", "select_multiple", "execute_sync")
            and call.args
        ):
            if call.func.attr == "execute_sync":
                return _literal(call.args[1]) if len(call.args) > 1 else "sync"
            return _literal(call.args[0])
    return None


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _arguments(node: ast.AST) -> list[tuple[str, str]]:
    found = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Arg":
            name = _literal(call.args[0])
            params = [n.id for n in ast.walk(call.args[1]) if isinstance(n, ast.Name)]
            if name is not None and params:
                found.append((name, params[-1]))
    return found


def _executed(node: ast.AST) -> str | None:
    """How the method reads its field: `execute(<type>)` (the type's source), "sync", "list",
    or None (the field returns an object: the method's return annotation says which)."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            if call.func.attr == "execute":
                return ast.unparse(call.args[0]) if call.args else "None"
            if call.func.attr == "execute_sync":
                return "sync"
            if call.func.attr == "execute_object_list":
                return "list"
    return None


def _listed(node: ast.AST) -> str:
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "execute_object_list"
        ):
            return ast.unparse(call.args[0])
    raise ValueError("no execute_object_list")


@functools.cache
def dagger_schema() -> gql.GraphQLSchema:
    builder = _Builder()
    query = builder.named_type(gen.Query)
    every = [
        builder.named_type(v)
        for v in vars(gen).values()
        if isinstance(v, type)
        and v.__module__ == gen.__name__
        and issubclass(v, base.Object | base.Scalar | base.Enum)
        and not v.__name__.startswith("_")
        and v.__name__ not in ("Client", "Query")
    ]
    schema = gql.GraphQLSchema(query=query, types=every)
    errors = gql.validate_schema(schema)
    if errors:
        raise ValueError(f"the schema read from dagger-io is invalid: {errors[:3]}")
    return schema
