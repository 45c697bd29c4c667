"""The builtin adapter's dataset reading, in-process: a dataset that cannot be read is a unit
error naming the file (and line), never a crash of the adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalhub.adapters.frameworks.builtin import BuiltinAdapter, load_rows
from evalhub.core.errors import UnitError
from tests.specs import BASE, StatusRecorder, framework_job


def test_a_dataset_that_is_a_directory_or_binary_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "data" / "faq.jsonl").mkdir(parents=True)
    job = framework_job(tmp_path, *BASE, key="faq")
    with pytest.raises(UnitError, match=r"cannot read the dataset .*faq\.jsonl: Is a directory"):
        BuiltinAdapter().run_benchmark_job(job, StatusRecorder())
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UnitError, match=r"binary\.jsonl: not UTF-8 text"):
        load_rows(binary, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "q"}\n{oops\n', r"rows\.jsonl:2: not JSON"),
        ("[1]\n", r"rows\.jsonl:1: a row must be a JSON object"),
        ('{"answer": "a"}\n', r"rows\.jsonl:1: a row needs a `question` or `prompt`"),
        ("\n\n", r"rows\.jsonl holds no rows"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "rows.jsonl").write_text(text)
    with pytest.raises(UnitError, match=message):
        load_rows(tmp_path / "rows.jsonl", None)


def test_limit_keeps_the_first_rows(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text("".join(f'{{"question": "{i}"}}\n' for i in range(5)))
    assert [r["question"] for r in load_rows(tmp_path / "rows.jsonl", 2)] == ["0", "1"]
