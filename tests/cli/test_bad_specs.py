"""The bad-spec corpus: every class of spec error is reported as `file:line:column: path: message`
plus a `hint:` line, all errors of a run at once, exit code 1, never a traceback.

Each directory under tests/bad_specs/ is one case (see tests/bad_specs/README.md): an evalhub.yaml,
spec files under evals/, and expect.yaml listing the diagnostics the case must produce. Every case
is copied to a temporary directory and validated by the real command line in a child process, in
both output formats.

A case whose expect.yaml has `known_bug:` documents an evalhub bug. Its test still runs every
check; failures of the aspects the bug explains raise KnownBug, which the strict xfail marker
expects. Any other failure is a plain test failure, and a fixed bug makes the test XPASS, which
fails the run until the `known_bug:` entry is removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import Result

CORPUS = Path(__file__).resolve().parents[1] / "bad_specs"
BASELINE = CORPUS / "_baseline"  # the valid specs every case is derived from
FORMATS = ("text", "json")
TIMEOUT = 60  # seconds per command; a bound against hangs, not a speed test

# What a check is about. A case's `known_bug.aspects` lists the ones its bug explains.
ASPECTS = {
    "exit": "the exit code is 1",
    "traceback": "no Python traceback is printed",
    "crash": "no 'unexpected error' report: the failure is an expected one",
    "json": "--format json prints the JSON report on stdout",
    "location": "a diagnostic at the expected file:line:column with the expected field path",
    "message": "the diagnostic's message contains the expected text",
    "hint": "every diagnostic has a hint, containing the expected text",
    "count": "exactly the expected number of diagnostics",
    "leak": "no secret from the spec is echoed in the output",
}
# The classes of errors the corpus must cover, by case-name prefix.
CLASSES = (
    "yaml-",
    "type-",
    "unknown-field-",
    "missing-",
    "enum-",
    "range-",
    "name-",
    "wrong-apiversion",
    "unknown-kind-",
    "document-is-",
    "not-an-evalhub-document",
    "ref-",
    "dup-",
    "dataset-",
    "secret-",
    "endpoint-url-credentials",
    "model-",
    "scale-",
    "evaluation-without-benchmarks",
    "project-",
    "multi-defect-",
)


class KnownBug(Exception):
    """Checks failed exactly as a documented evalhub bug predicts."""


@dataclass(frozen=True)
class Expected:
    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str

    def where(self) -> str:
        loc = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{loc}: {self.path}: " if self.path else f"{loc}: "


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    summary: str
    errors: tuple[Expected, ...]
    count: int
    setup: str | None
    forbid: tuple[str, ...]
    known_bug: dict[str, Any] | None

    def known_aspects(self, fmt: str) -> set[str]:
        if not self.known_bug or fmt not in self.known_bug.get("formats", FORMATS):
            return set()
        return set(self.known_bug["aspects"])

    def marks(self, fmt: str) -> list[pytest.MarkDecorator]:
        if not self.known_aspects(fmt):
            return []
        assert self.known_bug is not None
        return [pytest.mark.xfail(strict=True, raises=KnownBug, reason=self.known_bug["reason"])]


def load_case(directory: Path) -> Case:
    raw = YAML(typ="safe", pure=True).load((directory / "expect.yaml").read_text(encoding="utf-8"))
    errors = tuple(
        Expected(
            file=e["file"],
            line=int(e["line"]),
            column=int(e["column"]),
            path=str(e["path"]),
            message=str(e["message"]),
            hint=str(e["hint"]),
        )
        for e in raw["errors"]
    )
    known = raw.get("known_bug")
    if known is not None:
        unknown = set(known["aspects"]) - set(ASPECTS)
        assert not unknown, f"{directory.name}: unknown aspects {unknown}"
    return Case(
        name=directory.name,
        directory=directory,
        summary=raw["summary"],
        errors=errors,
        count=int(raw.get("count", len(errors))),
        setup=raw.get("setup"),
        forbid=tuple(raw.get("forbid", ())),
        known_bug=known,
    )


def case_dirs() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))


CASES = [load_case(d) for d in case_dirs()]
BY_NAME = {c.name: c for c in CASES}


# -- running the command line ---------------------------------------------------------------


Run = Result  # exit code, stdout, stderr (tests/conftest.py)


def evalhub(*args: str, cwd: Path) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "evalhub.cli.main", *args],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(cwd.parent)},  # crash reports land beside the case
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def prepare(case: Case, scratch: Path) -> Path:
    """Copy the case out of the repository (no evalhub.yaml above it, nothing written into the
    tree) and apply its setup."""
    work = scratch / case.name
    shutil.copytree(case.directory, work, ignore=shutil.ignore_patterns("expect.yaml"))
    if case.setup == "symlink-outside":
        outside = scratch / "outside"
        outside.mkdir()
        (outside / "faq.jsonl").write_text('{"question": "secret", "answer": "data"}\n')
        (work / "evals" / "datasets").mkdir(parents=True, exist_ok=True)
        (work / "evals" / "datasets" / "faq.jsonl").symlink_to(outside / "faq.jsonl")
    elif case.setup is not None:
        raise AssertionError(f"{case.name}: unknown setup {case.setup!r}")
    return work


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], Future[Run]]]:
    """Start every selected (case, format) run at once: they are independent child processes,
    so the corpus takes the time of the slowest few, not of all of them in a row."""
    wanted: set[tuple[str, str]] = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if isinstance(params.get("case"), Case) and params.get("fmt") in FORMATS:
            wanted.add((params["case"].name, params["fmt"]))
    wanted.add(("multi-defect-all-reported", "json"))
    workdirs = {
        name: prepare(BY_NAME[name], tmp_path_factory.mktemp(name))
        for name in sorted({n for n, _ in wanted})
    }
    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    futures = {
        (name, fmt): pool.submit(evalhub, "validate", "--format", fmt, cwd=workdirs[name])
        for name, fmt in sorted(wanted)
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


# -- reading the two output formats -----------------------------------------------------------

HEAD = re.compile(r"^(?P<file>[^\s:][^:]*?)(?::(?P<line>\d+):(?P<column>\d+))?: (?P<rest>.*)$")


def parse_text(output: str) -> list[dict[str, Any]]:
    """Diagnostics from the text report: `file:line:column: path: message` (or `file: message`
    when the position is unknown), each optionally followed by `  hint: …`."""
    found: list[dict[str, Any]] = []
    for line in output.splitlines():
        if line.startswith("  hint: ") and found:
            found[-1]["hint"] = line.removeprefix("  hint: ")
            continue
        if not line.strip() or line.startswith(("✗", "✓", "error: ")):
            continue
        match = HEAD.match(line)
        if match:
            found.append(
                {
                    "file": match["file"],
                    "line": int(match["line"] or 0),
                    "column": int(match["column"] or 0),
                    "text": line,
                    "hint": "",
                }
            )
    return found


def parse_json(stdout: str) -> list[dict[str, Any]] | None:
    try:
        report = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(report, dict) or report.get("format_version") != 1:
        return None
    errors = report.get("errors")
    if not isinstance(errors, list) or report.get("ok") is not (not errors):
        return None
    return errors


def locate(fmt: str, want: Expected, got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reported diagnostics at the expected place (file, line, column and field path)."""
    out = []
    for d in got:
        if (d["file"], d["line"], d["column"]) != (want.file, want.line, want.column):
            continue
        if fmt == "json" and d["path"] == want.path:
            out.append({**d, "message_text": d["message"]})
        elif fmt == "text" and d["text"].startswith(want.where()):
            rest = d["text"].removeprefix(want.where())
            if want.path or not re.match(r"^[\w.\[\]-]+: ", rest):
                out.append({**d, "message_text": rest})
    return out


def check(case: Case, fmt: str, run: Run) -> None:
    problems: list[tuple[str, str]] = []

    def fail(aspect: str, why: str) -> None:
        problems.append((aspect, why))

    if run.code != 1:
        fail("exit", f"exit code {run.code}, expected 1")
    if "Traceback" in run.output:
        fail("traceback", "a traceback was printed")
    crashed = "An unexpected error has occurred" in run.output
    if crashed:
        fail("crash", "evalhub reported an unexpected error")
    for secret in case.forbid:
        if secret in run.output:
            fail("leak", f"the output repeats {secret!r}")
    got: list[dict[str, Any]] | None = None
    if not crashed:
        got = parse_json(run.stdout) if fmt == "json" else parse_text(run.output)
        if got is None:
            fail("json", "stdout is not a JSON validation report")
    if got is not None:
        for want in case.errors:
            here = locate(fmt, want, got)
            if not here:
                fail("location", f"nothing reported at {want.where()}")
                continue
            if not any(want.message in d["message_text"] for d in here):
                fail("message", f"{want.where()}: message lacks {want.message!r}")
            elif not any(want.hint in d["hint"] for d in here if want.message in d["message_text"]):
                fail("hint", f"{want.where()}: hint lacks {want.hint!r}")
        for d in got:
            if not d["hint"]:
                fail("hint", f"no hint for {d.get('text') or d}")
        if len(got) != case.count:
            fail("count", f"{len(got)} diagnostics reported, expected {case.count}")
    known = case.known_aspects(fmt)
    details = "\n".join(f"  [{a}] {why}" for a, why in problems)
    report = f"{case.name} ({fmt}): {case.summary}\n{details}\n--- stdout\n{run.stdout}\n"
    report += f"--- stderr\n{run.stderr}"
    if any(aspect not in known for aspect, _ in problems):
        raise AssertionError(report)
    if problems:
        raise KnownBug(report)


PARAMS = [
    pytest.param(case, fmt, id=f"{case.name}-{fmt}", marks=case.marks(fmt))
    for case in CASES
    for fmt in FORMATS
]


@pytest.mark.parametrize(("case", "fmt"), PARAMS)
def test_bad_spec(case: Case, fmt: str, runs: dict[tuple[str, str], Future[Run]]) -> None:
    check(case, fmt, runs[(case.name, fmt)].result(timeout=TIMEOUT * 4))


# -- the corpus itself ----------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("prefix", CLASSES)
def test_corpus_covers_every_error_class(prefix: str) -> None:
    assert any(c.name.startswith(prefix) for c in CASES), f"no case for {prefix!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_is_well_formed(case: Case) -> None:
    assert (case.directory / "evalhub.yaml").is_file(), "every case has its own evalhub.yaml"
    assert (case.directory / "evals").is_dir(), "specs live under evals/"
    assert case.errors, "a case expects at least one diagnostic"
    assert case.count >= len(case.errors)
    for want in case.errors:
        if want.line:
            assert (case.directory / want.file).is_file(), f"{want.file} is not in the case"
    committed = sum(p.stat().st_size for p in case.directory.rglob("*") if p.is_file())
    assert committed < 16_000, "keep committed cases small; generate big inputs in the test"


def test_baseline_is_valid(tmp_path: Path) -> None:
    """The specs the cases are derived from are themselves valid: each case's defect is its own."""
    work = tmp_path / "baseline"
    shutil.copytree(BASELINE, work)
    run = evalhub("validate", "--format", "json", cwd=work)
    assert run.code == 0, run.output
    assert json.loads(run.stdout) == {
        "format_version": 1,
        "ok": True,
        "documents": 5,
        "errors": [],
        "notes": [],  # no provider with requirements, so none without a lock
    }


def test_multi_defect_case_reports_every_defect_in_one_run(
    runs: dict[tuple[str, str], Future[Run]],
) -> None:
    case = BY_NAME["multi-defect-all-reported"]
    run = runs[(case.name, "json")].result(timeout=TIMEOUT * 4)
    assert run.code == 1, run.output
    errors = json.loads(run.stdout)["errors"]
    assert len(errors) == len(case.errors) >= 6
    assert len({e["file"] for e in errors}) >= 5
    places = {(e["file"], e["line"], e["column"], e["path"]) for e in errors}
    assert places == {(w.file, w.line, w.column, w.path) for w in case.errors}
