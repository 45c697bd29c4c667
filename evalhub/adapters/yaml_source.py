"""Reading spec files: YAML text -> SourceDocuments with the position of every node.

We compose YAML nodes with ruamel.yaml and build the data ourselves, which lets us keep every
node's position, report duplicate keys where the second one stands, refuse custom tags, and bound
the work hostile input can cause: file size, nesting depth and the number of nodes after alias
expansion ("billion laughs") all have limits.
"""

from __future__ import annotations

import io
import math
import pathlib
import stat
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.compat import _DEFAULT_YAML_VERSION
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.main import CParser  # type: ignore[attr-defined]  # libyaml (clib), or None
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver

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
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"


class _Resolver(VersionedResolver):
    """YAML 1.2's implicit types, as ruamel's own resolver decides them, minus its per-file and
    per-scalar overhead: it looks the version up for every scalar (through two AttributeErrors
    when the C parser composes, which never reports a %YAML directive anyway) and builds its
    table of rules again for every file. Together a third of the time a spec file took."""

    _rules: dict[Any, Any] | None = None  # the 1.2 rules: first character -> [(tag, regexp)]

    @property
    def processing_version(self) -> Any:
        return _DEFAULT_YAML_VERSION

    @property
    def versioned_resolver(self) -> Any:
        rules = _Resolver._rules
        if rules is None:
            rules = _Resolver._rules = VersionedResolver(_DEFAULT_YAML_VERSION).versioned_resolver
            assert None not in rules  # resolve() extends the list of None in place: keep it empty
        return rules


if CParser is not None:

    class _Loader(CParser, SafeConstructor, _Resolver):  # type: ignore[misc]
        """What YAML(typ="safe").compose_all builds for each stream, defined once: ruamel
        defines that class anew on every call (a class per spec file)."""

        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            self._parser = self._composer = self
            SafeConstructor.__init__(self, loader=self)
            _Resolver.__init__(self, loadumper=self)


def _compose_all(text: str) -> Any:
    """The nodes of every document in `text`, and the constructor of their scalars."""
    if CParser is None:  # pragma: no cover - see the import
        yaml = YAML(typ="safe")
        return yaml.compose_all(io.StringIO(text)), yaml.constructor
    loader = _Loader(io.StringIO(text))

    def documents() -> Any:
        try:
            while loader.check_node():
                yield loader.get_node()
        finally:
            loader.dispose()

    return documents(), loader


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
        tag = node.tag  # a property building the string anew: read once per node
        if isinstance(node, MappingNode):
            return self._mapping(node, tag, path, depth)
        if isinstance(node, SequenceNode):
            if tag != "tag:yaml.org,2002:seq":
                raise self._bad_tag(node, path)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, tag, path)

    def _bad_tag(self, node: Node, path: Path) -> _Abort:
        return self.fail(
            node,
            path,
            f"unsupported YAML tag {node.tag!r}",
            "remove the tag: specs hold plain strings, numbers, booleans, lists and mappings",
        )

    def _scalar(self, node: ScalarNode, tag: str | None, path: Path) -> Any:
        if tag in (_STR, _TIMESTAMP):  # dates stay the text the author wrote
            return node.value  # what SafeConstructor makes of a string, without its detours
        if tag not in _SCALAR_TAGS:
            raise self._bad_tag(node, path)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (ValueError, YAMLError) as exc:
            raise self.fail(
                node, path, f"cannot read value {node.value[:40]!r}: {exc}", "quote it"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(
                node,
                path,
                f"{node.value!r} is not a finite number",
                "write a number; quote it if you meant the text",
            )
        return value

    def _mapping(
        self, node: MappingNode, tag: str | None, path: Path, depth: int
    ) -> dict[str, Any]:
        if tag != "tag:yaml.org,2002:map":
            raise self._bad_tag(node, path)
        out: dict[str, Any] = {}
        pairs = [(key, key.tag, value) for key, value in node.value]
        merges = [value for _, key_tag, value in pairs if key_tag == _MERGE]
        for key_node, key_tag, value_node in pairs:
            if key_tag == _MERGE:
                continue
            if not isinstance(key_node, ScalarNode) or key_tag not in _SCALAR_TAGS:
                raise self.fail(
                    key_node, path, "mapping keys must be plain strings", "quote the key"
                )
            key = "" if key_tag == _NULL else str(self._scalar(key_node, key_tag, path))
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
            self.keys.setdefault(child, _pos(key_node))  # a merge never moves an explicit key
            out[key] = self.build(value_node, child, depth + 1)
        # Merged keys (`<<`) come last, so explicit keys keep their own positions and values.
        for merge in merges:
            for key, value in self._merge(merge, path, depth).items():
                out.setdefault(key, value)
        return out

    def _merge(self, node: Node, path: Path, depth: int) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.fail(source, path, "'<<' merges only mappings", "merge a mapping")
            for key, value in self._mapping(source, source.tag, path, depth + 1).items():
                merged.setdefault(key, value)
        return merged


def _line_col(text: str, offset: int) -> Position:
    """Line and column (in characters) of a UTF-8 byte offset into `text`."""
    before = text.encode("utf-8")[:offset].decode("utf-8", "replace")
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


def read_spec_file(path: pathlib.Path, shown: str) -> tuple[bytes | None, Diagnostic | None]:
    """A spec file's bytes, read with a bound: devices, pipes and huge files are refused before
    reading (a symlink to /dev/zero must not exhaust memory)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return None, Diagnostic(
                shown, 0, 0, "", "not a regular file", "spec paths must name YAML files"
            )
        with path.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1), None
    except OSError as exc:
        return None, Diagnostic(shown, 0, 0, "", f"cannot read: {exc.strerror}", "")


def _decode(file: str, raw: bytes) -> tuple[str | None, Diagnostic | None]:
    if len(raw) > MAX_FILE_BYTES:
        return None, Diagnostic(
            file,
            0,
            0,
            "",
            f"file is larger than {MAX_FILE_BYTES:,} bytes, the limit for a spec file",
            "split it into several files, or exclude it from the spec paths in evalhub.yaml",
        )
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None, Diagnostic(
            file, 1, 1, "", "file is UTF-16 encoded", "save it as UTF-8 (without a BOM)"
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


def _could_be_deep(text: str) -> bool:
    """Cheap bound: nesting needs brackets or indentation; most files have too few of both."""
    if text.count("[") + text.count("{") > MAX_DEPTH:
        return True
    indents = (len(line) - len(line.lstrip(" -")) for line in text.splitlines())
    return max(indents, default=0) > MAX_DEPTH


def _too_deep(file: str, text: str) -> Diagnostic | None:
    """Refuse nesting beyond MAX_DEPTH before composing: the C composer recurses and a
    100,000-deep document would overflow the C stack. libyaml's event parser does not recurse."""
    if not _could_be_deep(text):
        return None
    depth = 0
    try:
        for event in YAML(typ="safe").parse(io.StringIO(text)):
            if isinstance(event, MappingStartEvent | SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return Diagnostic(
                        file,
                        mark.line + 1,
                        mark.column + 1,
                        "",
                        f"document is nested more than {MAX_DEPTH} levels deep",
                        "specs are shallow; flatten the structure",
                    )
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                depth -= 1
    except (YAMLError, RecursionError):
        return None  # reported by the real parse, which stops at the same place
    return None


def parse_documents(
    file: str, raw: bytes, directory: str = ""
) -> tuple[list[SourceDocument], list[Diagnostic]]:
    """Parse every document of one file. Returns the documents read and the problems found;
    a file with a syntax error yields the documents before the error."""
    text, problem = _decode(file, raw)
    if text is None:
        assert problem is not None
        return [], [problem]
    deep = _too_deep(file, text)
    if deep is not None:
        return [], [deep]
    documents: list[SourceDocument] = []
    errors: list[Diagnostic] = []
    nodes, constructor = _compose_all(text)
    try:
        for index, root in enumerate(nodes):
            if root is None or (
                isinstance(root, ScalarNode) and root.tag == _NULL and root.value in ("", "~")
            ):
                continue  # an empty document (a trailing `---`, say)
            builder = _Builder(file, constructor)
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
