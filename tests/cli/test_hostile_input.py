"""Hostile input: alias bombs, huge or deep or binary files, bad encodings. Each gets the same
clear treatment as any other error: exit code 1, a diagnostic naming the file (with line:column
where a position means something), no traceback, in bounded time and memory.

The inputs are generated here into tmp_path (nothing big is committed). Every command runs in a
child process limited to 1 GiB of address space (RLIMIT_AS) and killed after a wall-clock
bound: a run that needs more is a failure, whatever the machine's speed.

The second half tests evalhub.adapters.yaml_source.parse_documents directly: source positions
of keys and values, duplicate keys, merge keys, and documents kept before a syntax error.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, parse_documents
from evalhub.core.source import SourceDocument
from tests.conftest import Result

MEMORY_LIMIT = 1 << 30  # bytes of address space for the child
WALL_LIMIT = 15  # seconds; hostile input must not make validation hang
SPEC = "evals/hostile.yaml"

VALID_MODEL = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata:
  name: assistant
spec:
  endpoint:
    url: http://127.0.0.1:8000/v1
    served_name: smollm2-135m
  revision: v1
"""


def _limit_memory() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


Run = Result  # exit code, stdout, stderr (tests/conftest.py)


def start(cwd: Path, fmt: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalhub.cli.main", "validate", "--format", fmt],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(cwd)},  # crash reports land in tmp_path, not /tmp
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        preexec_fn=_limit_memory,
    )


def finish(proc: subprocess.Popen[str]) -> Run:
    try:
        stdout, stderr = proc.communicate(timeout=WALL_LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"validate ran longer than {WALL_LIMIT} s") from None
    return Run(proc.returncode, stdout, stderr)


def validate(cwd: Path, fmt: str) -> Run:
    return finish(start(cwd, fmt))


def project(root: Path, content: bytes) -> Path:
    """A project whose only spec file holds `content`."""
    (root / "evalhub.yaml").write_text("specs: [evals]\n")
    spec = root / SPEC
    spec.parent.mkdir(parents=True)
    spec.write_bytes(content)
    return root


# -- generators ----------------------------------------------------------------------------


def billion_laughs() -> bytes:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


def merge_key_bomb() -> bytes:
    lines = ["m0: &m0 {k: v}"]
    for i in range(1, 40):
        lines.append(f"m{i}: &m{i}\n  <<: *m{i - 1}\n  x: *m{i - 1}\n  y: *m{i - 1}")
    return ("\n".join(lines) + "\n").encode()


def spec_with(field_value: str) -> bytes:
    """The valid model with `revision` set to the given YAML text."""
    return VALID_MODEL.replace("revision: v1", f"revision: {field_value}").encode()


def five_megabytes() -> bytes:
    """Valid documents, repeated past 5 MiB."""
    chunk = ("---\n" + VALID_MODEL + "# " + "x" * 78 + "\n").encode()
    return chunk * (5 * (1 << 20) // len(chunk) + 1)


def random_bytes(size: int, seed: int, alphabet: bytes | None = None) -> bytes:
    rng = random.Random(seed)
    if alphabet is None:
        return rng.randbytes(size)
    return bytes(rng.choice(alphabet) for _ in range(size))


@dataclass(frozen=True)
class Hostile:
    id: str
    content: Callable[[], bytes]
    message: str  # a substring of the diagnostic's message
    line: int | None = None  # the expected position; None: any (0 allowed)
    column: int | None = None
    positioned: bool = True  # a line:column is meaningful for this input
    text: bool = False  # also check --format text (a second child process, run side by side)
    bug: str | None = None  # reason of a strict xfail


NUL_SPEC = VALID_MODEL.replace("served_name: smollm2-135m", "served_name: smollm2\x00135m")
DEEP = 10_000

HOSTILE = [
    Hostile("billion-laughs", billion_laughs, f"more than {MAX_NODES:,} values", line=1, text=True),
    Hostile("merge-key-bomb", merge_key_bomb, f"more than {MAX_NODES:,} values"),
    Hostile("recursive-alias", lambda: b"a: &x [*x]\n", f"more than {MAX_DEPTH} levels", line=1),
    Hostile(
        "five-megabytes",
        lambda: five_megabytes(),
        f"file is larger than {MAX_FILE_BYTES:,} bytes",
        positioned=False,
        text=True,
    ),
    Hostile(
        "one-byte-over-the-limit",
        lambda: b"a: " + b"x" * (MAX_FILE_BYTES - 3) + b"\n",
        f"file is larger than {MAX_FILE_BYTES:,} bytes",
        positioned=False,
    ),
    Hostile(
        "deep-flow-lists",
        lambda: b"a: " + b"[" * DEEP + b"]" * DEEP + b"\n",
        f"more than {MAX_DEPTH} levels",
        line=1,
    ),
    Hostile(
        "deep-flow-mappings",
        lambda: b"a: " + b"{a: " * DEEP + b"1" + b"}" * DEEP + b"\n",
        f"more than {MAX_DEPTH} levels",
        line=1,
    ),
    Hostile(
        "deep-block-lists",
        lambda: b"- " * DEEP + b"x\n",
        f"more than {MAX_DEPTH} levels",
        line=1,
    ),
    Hostile(
        "deep-block-mappings",
        lambda: b"".join(b" " * i + b"k:\n" for i in range(200)) + b" " * 200 + b"k: v\n",
        f"more than {MAX_DEPTH} levels",
        line=MAX_DEPTH + 1,  # where the mapping one level too deep starts
    ),
    Hostile(
        "very-deep-flow-lists-under-the-size-limit",
        lambda: b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        f"more than {MAX_DEPTH} levels",
    ),
    Hostile(
        "random-binary",
        lambda: random_bytes(4096, seed=20240611),
        "not valid UTF-8",
    ),
    Hostile(
        "random-control-characters",
        lambda: random_bytes(4096, seed=7, alphabet=bytes(range(1, 32))),
        "character YAML does not allow",
    ),
    Hostile(
        "nul-byte-in-valid-yaml",
        lambda: NUL_SPEC.encode(),
        "character YAML does not allow (#x0000)",
        line=8,
        column=25,
        text=True,
    ),
    Hostile(
        "nul-byte-after-non-ascii-text",
        lambda: NUL_SPEC.replace("name: assistant", "name: assistant  # naïve café").encode(),
        "character YAML does not allow (#x0000)",
        line=8,
        column=25,
    ),
    Hostile("empty-file", lambda: b"", "file holds no documents", line=1, column=1, text=True),
    Hostile(
        "only-comments",
        lambda: b"# nothing here\n# still nothing\n",
        "file holds no documents",
        line=1,
        column=1,
    ),
    Hostile(
        "latin-1",
        lambda: VALID_MODEL.replace("revision: v1", "revision: v1-café").encode("latin-1"),
        "not valid UTF-8 (byte 0xe9",
        line=9,
        column=19,
        text=True,
    ),
    Hostile(
        "utf-16",
        lambda: VALID_MODEL.encode("utf-16"),
        "file is UTF-16 encoded",
        line=1,
        column=1,
    ),
    Hostile(
        "integer-with-10000-digits",
        lambda: spec_with("1" * 10_000),
        "cannot read value",
        line=9,
        column=13,
    ),
    Hostile(
        "integer-key-with-10000-digits",
        lambda: VALID_MODEL.replace(
            "  revision: v1\n", "  revision: v1\n  ? " + "9" * 10_000 + "\n  : x\n"
        ).encode(),
        "cannot read",
        line=10,
        column=5,
    ),
    Hostile(
        "one-megabyte-line",
        lambda: VALID_MODEL.replace("name: assistant", "name: " + "A" * 1_000_000).encode(),
        "is not a valid name",
        line=4,
        column=9,
    ),
    Hostile(
        "ten-thousand-documents",
        lambda: b"---\n{}\n" * 10_000,
        "not an evalhub document",
        line=2,
        column=1,
    ),
    Hostile(
        "five-thousand-unknown-fields",
        lambda: (VALID_MODEL + "".join(f"  k{i}: {i}\n" for i in range(5_000))).encode(),
        "unknown field",
        line=10,
        column=3,
    ),
]


def _hostile_params() -> list[Any]:
    out = []
    for case in HOSTILE:
        marks = (
            [pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.bug)]
            if case.bug
            else []
        )
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def check_run(run: Run, fmt: str, message: str) -> list[dict[str, Any]]:
    """Exit 1, no traceback, no crash report; the diagnostics (as JSON dicts) naming SPEC."""
    assert run.code == 1, f"exit code {run.code}\n{run.output[-3000:]}"
    assert "Traceback" not in run.output
    assert "An unexpected error has occurred" not in run.output, run.output[-3000:]
    assert len(run.output) < 50_000_000
    if fmt == "json":
        errors: list[dict[str, Any]] = json.loads(run.stdout)["errors"]
    else:
        errors = [
            {"text": line}
            for line in run.output.splitlines()
            if line.startswith(SPEC) and message in line
        ]
        hints = [line for line in run.output.splitlines() if line.startswith("  hint: ")]
        assert hints, "every diagnostic has a hint line"
    assert errors, run.output[-3000:]
    return errors


@pytest.mark.parametrize("case", _hostile_params())
def test_hostile_input_is_a_clear_error(case: Hostile, tmp_path: Path) -> None:
    root = project(tmp_path, case.content())
    json_proc = start(root, "json")
    text_proc = start(root, "text") if case.text else None  # side by side
    try:
        run = finish(json_proc)
        text = finish(text_proc) if text_proc is not None else None
    finally:
        for proc in (json_proc, text_proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    errors = check_run(run, "json", case.message)
    mine = [e for e in errors if e["file"] == SPEC and case.message in e["message"]]
    assert mine, json.dumps(errors[:5], indent=2)
    first = mine[0]
    assert first["hint"], first
    assert len(first["message"]) < 500, "messages stay short whatever the input"
    if case.positioned:
        assert first["line"] >= 1 and first["column"] >= 1, first
    if case.line is not None:
        assert first["line"] == case.line, first
    if case.column is not None:
        assert first["column"] == case.column, first
    if text is None:
        return
    lines = check_run(text, "text", case.message)
    if case.positioned:
        assert any(
            line["text"].startswith(f"{SPEC}:{first['line']}:{first['column']}: ") for line in lines
        ), text.output[-3000:]


def test_huge_valid_scalar_is_not_echoed(tmp_path: Path) -> None:
    """A 1 MB value in an error is shortened, not printed whole."""
    root = project(
        tmp_path, VALID_MODEL.replace("name: assistant", "name: " + "A" * 1_000_000).encode()
    )
    run = validate(root, "text")
    assert run.code == 1
    assert len(run.output) < 5_000, run.output[:5_000]


def test_spec_file_symlinked_to_an_endless_device(tmp_path: Path) -> None:
    root = project(tmp_path, VALID_MODEL.encode())
    (root / "evals" / "zero.yaml").symlink_to("/dev/zero")
    run = validate(root, "json")
    errors = check_run(run, "json", "limited")
    assert any(e["file"] == "evals/zero.yaml" for e in errors), errors


def test_sparse_two_gigabyte_spec_file(tmp_path: Path) -> None:
    root = project(tmp_path, VALID_MODEL.encode())
    with (root / "evals" / "huge.yaml").open("wb") as handle:
        handle.truncate(2 << 30)
    run = validate(root, "json")
    errors = check_run(run, "json", "limited")
    assert any(e["file"] == "evals/huge.yaml" for e in errors), errors


def test_every_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    """Several hostile files at once: each gets its own diagnostic in the same run."""
    root = project(tmp_path, billion_laughs())
    (root / "evals" / "binary.yaml").write_bytes(random_bytes(512, seed=1))
    (root / "evals" / "empty.yaml").write_bytes(b"")
    (root / "evals" / "deep.yaml").write_bytes(b"[" * DEEP + b"]" * DEEP)
    (root / "evals" / "model.yaml").write_text(VALID_MODEL)
    run = validate(root, "json")
    errors = check_run(run, "json", "")
    assert {e["file"] for e in errors} == {
        SPEC,
        "evals/binary.yaml",
        "evals/empty.yaml",
        "evals/deep.yaml",
    }
    assert json.loads(run.stdout)["documents"] == 1  # the valid model was still read


# -- parse_documents: positions and YAML features -------------------------------------------


def parse(text: str | bytes, file: str = "f.yaml") -> tuple[list[SourceDocument], list[Any]]:
    return parse_documents(file, text.encode() if isinstance(text, str) else text)


def one(text: str | bytes) -> SourceDocument:
    docs, errors = parse(text)
    assert errors == [], errors
    assert len(docs) == 1
    return docs[0]


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc = one(
        "apiVersion: evalhub.dev/v1\n"
        "metadata:\n"
        "  name: assistant\n"
        "spec:\n"
        "  benchmarks:\n"
        "    - provider: builtin\n"
        "      weight: 2\n"
        "    - {provider: lm, weight: 3}\n"
    )
    assert doc.start == (1, 1)
    assert doc.keys[("apiVersion",)] == (1, 1)
    assert doc.values[("apiVersion",)] == (1, 13)
    assert doc.keys[("metadata", "name")] == (3, 3)
    assert doc.values[("metadata", "name")] == (3, 9)
    assert doc.values[("spec", "benchmarks", 0)] == (6, 7)
    assert doc.keys[("spec", "benchmarks", 0, "weight")] == (7, 7)
    assert doc.values[("spec", "benchmarks", 0, "weight")] == (7, 15)
    assert doc.values[("spec", "benchmarks", 1)] == (8, 7)
    assert doc.keys[("spec", "benchmarks", 1, "weight")] == (8, 22)
    assert doc.values[("spec", "benchmarks", 1, "weight")] == (8, 30)
    assert doc.data["spec"]["benchmarks"][1] == {"provider": "lm", "weight": 3}


def test_position_falls_back_to_the_nearest_ancestor() -> None:
    doc = one("spec:\n  endpoint:\n    url: x\n")
    assert doc.position(("spec", "endpoint", "served_name")) == (3, 5)
    assert doc.position(("spec", "endpoint"), key=True) == (2, 3)
    assert doc.position(("nothing", "here")) == (1, 1)


def test_empty_value_is_placed_on_its_own_line() -> None:
    doc = one("a: 1\nrevision:\nc: x\n")
    assert doc.data == {"a": 1, "revision": None, "c": "x"}
    assert doc.values[("revision",)][0] == 2


def test_positions_survive_a_byte_order_mark_and_crlf() -> None:
    doc = one(b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: 2\r\n")
    assert doc.keys[("a",)] == (1, 1)
    assert doc.keys[("b", "c")] == (3, 3)
    assert doc.values[("b", "c")] == (3, 6)


def test_positions_count_characters_not_bytes() -> None:
    doc = one("name: café\nnext: ünïcödé\nlast: {x: café, y: 😀, z: 1}\n")
    assert doc.values[("next",)] == (2, 7)
    assert doc.keys[("last",)] == (3, 1)
    assert doc.keys[("last", "y")] == (3, 17)
    assert doc.keys[("last", "z")] == (3, 23)


def test_duplicate_key_is_reported_at_the_second_occurrence() -> None:
    docs, errors = parse("a: 1\nspec:\n  api: chat\n  url: u\n  api: completions\n")
    assert len(docs) == 1, "the document is still read"
    assert [(e.line, e.column, e.path) for e in errors] == [(5, 3, "spec.api")]
    assert "duplicate key 'api' (first defined at line 3)" in errors[0].message
    assert errors[0].hint


def test_duplicate_keys_in_list_items_and_flow_mappings() -> None:
    docs, errors = parse("items:\n  - {a: 1, b: 2, a: 3}\n  - x: 1\n    x: 2\n")
    assert len(docs) == 1, "the document is still read"
    assert [(e.line, e.column, e.path) for e in errors] == [
        (2, 18, "items[0].a"),
        (4, 5, "items[1].x"),
    ]


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    doc = one(
        "base: &base\n"
        "  provider: builtin\n"
        "  weight: 1\n"
        "extra: &extra\n"
        "  weight: 5\n"
        "  threshold: 0.5\n"
        "entry:\n"
        "  <<: [*base, *extra]\n"
        "  weight: 2\n"
    )
    assert doc.data["entry"] == {"provider": "builtin", "weight": 2, "threshold": 0.5}
    assert doc.data["base"] == {"provider": "builtin", "weight": 1}
    assert doc.keys[("entry", "weight")] == (9, 3)


def test_merge_key_with_a_single_mapping() -> None:
    doc = one("d: &d {a: 1, b: 2}\ne:\n  <<: *d\n  c: 3\n")
    assert doc.data["e"] == {"a": 1, "b": 2, "c": 3}


def test_overriding_a_merged_key_records_the_overriding_position() -> None:
    doc = one("base: &b\n  weight: 1\nentry:\n  <<: *b\n  weight: -1\n")
    assert doc.data["entry"]["weight"] == -1
    assert doc.values[("entry", "weight")] == (5, 11)


def test_explicit_key_before_a_merge_keeps_its_position() -> None:
    doc = one("entry:\n  weight: -1\n  <<: {weight: 2, z: 3}\n")
    assert doc.data["entry"] == {"weight": -1, "z": 3}
    assert doc.keys[("entry", "weight")] == (2, 3)


def test_merge_of_a_scalar_is_an_error() -> None:
    docs, errors = parse("a: &a 1\nb:\n  <<: *a\n")
    assert docs == []
    assert len(errors) == 1 and "merges only mappings" in errors[0].message
    assert errors[0].line >= 1


def test_documents_before_a_syntax_error_are_kept() -> None:
    docs, errors = parse("a: 1\n---\nb: 2\n---\nc: [1, 2\nd: 4\n")
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert [d.index for d in docs] == [0, 1]
    assert docs[1].start == (3, 1)
    assert docs[1].keys[("b",)] == (3, 1)
    assert len(errors) == 1
    assert "YAML syntax error" in errors[0].message
    assert errors[0].line >= 5 and errors[0].column >= 1
    assert errors[0].hint


def test_syntax_error_message_names_where_the_construct_started() -> None:
    _, errors = parse('a: 1\nb: "unclosed\nc: 3\n')
    assert len(errors) == 1
    assert "starts at line 2, column 4" in errors[0].message


def test_one_rejected_document_does_not_hide_the_next() -> None:
    docs, errors = parse("a: !custom 1\n---\nb: 2\n")
    assert [d.data for d in docs] == [{"b": 2}]
    assert [(e.line, e.column, e.path) for e in errors] == [(1, 4, "a")]
    assert "unsupported YAML tag '!custom'" in errors[0].message


def test_leading_document_marker_is_not_a_document() -> None:
    docs, errors = parse("---\na: 1\n")
    assert errors == []
    assert [d.data for d in docs] == [{"a": 1}]


def test_empty_documents_are_skipped() -> None:
    docs, errors = parse("a: 1\n---\n")
    assert errors == []
    assert [d.data for d in docs] == [{"a": 1}]
    docs, errors = parse("---\n---\nb: 2\n")
    assert [d.data for d in docs] == [{"b": 2}]


def test_unsafe_and_custom_tags_are_refused_with_their_position() -> None:
    for text, tag in [
        ("x:\n  y: !!python/object/apply:os.system [ls]\n", "python/object/apply:os.system"),
        ("x:\n  y: !vault |\n    abc\n", "!vault"),
        ("x:\n  y: !!set {a, b}\n", "tag:yaml.org,2002:set"),
        ("x:\n  y: !!binary aGVsbG8=\n", "tag:yaml.org,2002:binary"),
    ]:
        docs, errors = parse(text)
        assert docs == [], text
        assert [(e.line, e.column, e.path) for e in errors] == [(2, 6, "x.y")], text
        assert tag in errors[0].message and errors[0].hint


def test_plain_scalars_keep_their_types_and_dates_stay_text() -> None:
    doc = one("i: 3\nf: 0.5\nb: true\nn: ~\ns: yes\nd: 2024-06-11\nq: '007'\n")
    assert doc.data == {
        "i": 3,
        "f": 0.5,
        "b": True,
        "n": None,
        "s": "yes",
        "d": "2024-06-11",
        "q": "007",
    }


def test_non_string_keys() -> None:
    doc = one("1: one\nnull: nothing\n")
    assert doc.data == {"1": "one", "": "nothing"}
    docs, errors = parse("? [a, b]\n: c\n")
    assert docs == [] and "mapping keys must be plain strings" in errors[0].message


def test_alias_expansion_is_counted_and_positions_point_into_the_file() -> None:
    docs, errors = parse(billion_laughs())
    assert docs == []
    assert len(errors) == 1
    assert f"more than {MAX_NODES:,} values" in errors[0].message
    assert errors[0].line == 1 and errors[0].column >= 1
    assert errors[0].hint


def test_nesting_limit_names_the_place() -> None:
    deep = "".join("  " * i + "k:\n" for i in range(MAX_DEPTH + 5))
    docs, errors = parse(deep)
    assert docs == []
    assert errors[0].line == MAX_DEPTH + 1  # the mapping one level too deep starts here
    assert "more than 64 levels deep" in errors[0].message


def test_file_name_and_directory_are_carried() -> None:
    docs, _ = parse_documents("evals/models/m.yaml", b"a: 1\n", "models")
    assert docs[0].file == "evals/models/m.yaml"
    assert docs[0].directory == "models"


def test_undecodable_bytes_are_located() -> None:
    docs, errors = parse(b"a: 1\nb: caf\xe9\n")
    assert docs == []
    assert [(e.line, e.column) for e in errors] == [(2, 7)]
    assert "0xe9" in errors[0].message and errors[0].hint


def test_size_limit_is_checked_before_parsing() -> None:
    docs, errors = parse(b"#" * (MAX_FILE_BYTES + 1))
    assert docs == [] and len(errors) == 1
    assert f"larger than {MAX_FILE_BYTES:,} bytes" in errors[0].message
