"""Reading spec files: YAML text -> SourceDocuments with the position of every node.

We compose YAML nodes with ruamel.yaml and build the data ourselves, which lets us keep every
node's position, report duplicate keys where the second one stands, refuse custom tags, and bound
the work hostile input can cause: file size, nesting depth and the number of nodes after alias
expansion ("billion laughs") all have limits.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from evalhub.core.errors import Diagnostic
from evalhub.core.source import Path, Position, SourceDocument, format_path

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a spec file is written by people
MAX_DEPTH = 64
MAX_NODES = 100_000  # per document, counted after aliases are expanded

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Abort(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns one composed document into plain data, recording positions."""

    def __init__(self, file: str, constructor: Any) -> None:
        self.file = file
        self.constructor = constructor
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}
        self.nodes = 0
        self.errors: list[Diagnostic] = []

    def fail(self, node: Node, path: Path, message: str, hint: str) -> _Abort:
        line, col = _pos(node)
        shown = format_path(path[:6]) + ("…" if len(path) > 6 else "")
        return _Abort(Diagnostic(self.file, line, col, shown, message, hint))

    def build(self, node: Node, path: Path, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                node,
                path,
                f"document has more than {MAX_NODES:,} values once aliases are expanded",
                "this looks like an alias bomb; write the values out instead of nesting aliases",
            )
        if depth > MAX_DEPTH:
            raise self.fail(
                node,
                path,
                f"document is nested more than {MAX_DEPTH} levels deep",
                "specs are shallow; flatten the structure",
            )
        self.values.setdefault(path, _pos(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise self._bad_tag(node, path)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _bad_tag(self, node: Node, path: Path) -> _Abort:
        return self.fail(
            node,
            path,
            f"unsupported YAML tag {node.tag!r}",
            "remove the tag: specs hold plain strings, numbers, booleans, lists and mappings",
        )

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _TIMESTAMP:
            return node.value  # dates stay the text the author wrote
        if node.tag not in _SCALAR_TAGS:
            raise self._bad_tag(node, path)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, YAMLError) as exc:
            raise self.fail(
                node, path, f"cannot read value {node.value[:40]!r}: {exc}", "quote it"
            ) from None

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            raise self._bad_tag(node, path)
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self._merge(value_node, path, depth))
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                raise self.fail(
                    key_node, path, "mapping keys must be plain strings", "quote the key"
                )
            key = str(self.constructor.construct_object(key_node, deep=True))
            if key_node.tag == "tag:yaml.org,2002:null":
                key = ""
            child = (*path, key)
            if key in out:
                first = self.keys[child]
                self.errors.append(
                    Diagnostic(
                        self.file,
                        *_pos(key_node),
                        format_path(child),
                        f"duplicate key {key!r} (first defined at line {first[0]})",
                        "keep one of the two; YAML would silently use only the last one",
                    )
                )
                continue
            self.keys[child] = _pos(key_node)
            out[key] = self.build(value_node, child, depth + 1)
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _merge(self, node: Node, path: Path, depth: int) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.fail(source, path, "'<<' merges only mappings", "merge a mapping")
            for key, value in self._mapping(source, path, depth + 1).items():
                merged.setdefault(key, value)
        return merged


def _line_col(text: str, offset: int) -> Position:
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _decode(file: str, raw: bytes) -> tuple[str | None, Diagnostic | None]:
    if len(raw) > MAX_FILE_BYTES:
        return None, Diagnostic(
            file,
            0,
            0,
            "",
            f"file is {len(raw):,} bytes; spec files are limited to {MAX_FILE_BYTES:,}",
            "split it into several files, or exclude it from the spec paths in evalhub.yaml",
        )
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, Diagnostic(
            file,
            line,
            col,
            "",
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            "save the file as UTF-8; if it is not a spec, exclude it in evalhub.yaml",
        )


def _syntax_error(file: str, text: str, exc: MarkedYAMLError, line: int, col: int) -> Diagnostic:
    problem = exc.problem or str(exc).splitlines()[0]
    context = ""
    start = exc.context_mark
    if exc.context:
        context = f" ({exc.context}"
        if start is not None and (start.line + 1, start.column + 1) != (line, col):
            context += f" that starts at line {start.line + 1}, column {start.column + 1}"
        context += ")"
    hint = "check indentation, colons, brackets and quotes around this position"
    lines = text.splitlines()
    if 0 < line <= len(lines) and "\t" in lines[line - 1][: max(col, 1)]:
        hint = "YAML indents with spaces, never tabs: replace the tab characters"
    return Diagnostic(file, line, col, "", f"YAML syntax error: {problem}{context}", hint)


def parse_documents(
    file: str, raw: bytes, directory: str = ""
) -> tuple[list[SourceDocument], list[Diagnostic]]:
    """Parse every document of one file. Returns the documents read and the problems found;
    a file with a syntax error yields the documents before the error."""
    text, problem = _decode(file, raw)
    if text is None:
        assert problem is not None
        return [], [problem]
    yaml = YAML(typ="safe")  # the C parser when ruamel.yaml.clib is installed: 6x faster
    documents: list[SourceDocument] = []
    errors: list[Diagnostic] = []
    try:
        for index, root in enumerate(yaml.compose_all(io.StringIO(text))):
            if root is None:
                continue
            builder = _Builder(file, yaml.constructor)
            try:
                data = builder.build(root, (), 0)
            except _Abort as abort:
                errors.append(abort.diagnostic)
                continue
            errors.extend(builder.errors)
            documents.append(
                SourceDocument(
                    file=file,
                    index=index,
                    data=data,
                    start=_pos(root),
                    values=builder.values,
                    keys=builder.keys,
                    directory=directory,
                )
            )
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        errors.append(_syntax_error(file, text, exc, line, col))
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        errors.append(
            Diagnostic(
                file,
                line,
                col,
                "",
                f"file contains a character YAML does not allow (#x{exc.character:04x})"
                if isinstance(exc.character, int)
                else f"file contains a character YAML does not allow ({exc.character!r})",
                "this looks like binary data; specs are text. Exclude it in evalhub.yaml",
            )
        )
    except RecursionError:
        errors.append(
            Diagnostic(
                file,
                0,
                0,
                "",
                "YAML is nested too deeply to read",
                f"specs are shallow; nesting stops at {MAX_DEPTH} levels",
            )
        )
    except YAMLError as exc:
        errors.append(Diagnostic(file, 0, 0, "", f"YAML error: {exc}", "check the file's syntax"))
    if not documents and not errors:
        errors.append(
            Diagnostic(
                file,
                1,
                1,
                "",
                "file holds no documents",
                "add a spec document (apiVersion, kind, metadata, spec) or delete the file",
            )
        )
    return documents, errors
