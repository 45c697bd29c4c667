"""The command line: help, version, init, and the error policy."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalhub import __version__
from evalhub.cli import main as cli_main
from evalhub.cli.commands import validate_cmd
from tests.conftest import run_cli

COMMANDS = ["init", "validate", "schema"]


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_everywhere(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.code == 0
    assert "Usage: evalhub " + command in result.stdout


def test_unknown_command_is_an_error_not_a_traceback() -> None:
    result = run_cli("valdate")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "validate" in result.stderr  # click suggests the close command


def test_init_then_validate(tmp_path: Path) -> None:
    result = run_cli("init", "proj", cwd=tmp_path)
    assert result.code == 0, result.stderr
    project = tmp_path / "proj"
    assert (project / "evalhub.yaml").is_file()
    assert ".evalhub/" in (project / ".gitignore").read_text().splitlines()
    checked = run_cli("validate", "--format", "json", cwd=project)
    assert checked.code == 0, checked.stdout
    report = json.loads(checked.stdout)
    assert report == {"format_version": 1, "ok": True, "documents": 5, "errors": [], "notes": []}


def test_init_never_overwrites_and_keeps_gitignore(tmp_path: Path) -> None:
    (tmp_path / "evalhub.yaml").write_text("specs: [mine]\n")
    (tmp_path / ".gitignore").write_text("node_modules/")
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0
    assert (tmp_path / "evalhub.yaml").read_text() == "specs: [mine]\n"
    assert "kept" in result.stdout
    assert (tmp_path / ".gitignore").read_text().splitlines()[0] == "node_modules/"
    assert ".evalhub/" in (tmp_path / ".gitignore").read_text().splitlines()
    again = run_cli("init", cwd=tmp_path)
    assert (tmp_path / ".gitignore").read_text().count(".evalhub/") == 1
    assert again.code == 0


def test_missing_dataset_is_reported_with_position(tmp_path: Path) -> None:
    run_cli("init", cwd=tmp_path)
    (tmp_path / "evals" / "datasets" / "faq.jsonl").unlink()
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert "evals/providers/builtin.yaml:12:16: spec.benchmarks[0].dataset:" in result.stdout
    assert "does not exist" in result.stdout


def test_validate_a_missing_path(tmp_path: Path) -> None:
    result = run_cli("validate", "nowhere", cwd=tmp_path)
    assert result.code == 1
    assert "nowhere: no such file or directory" in result.stdout


def test_unexpected_errors_print_a_report_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(validate_cmd, "run_validate", boom)
    assert cli_main.main(["validate"]) == 1
    err = capsys.readouterr().err
    assert "An unexpected error has occurred: RuntimeError: disk on fire" in err
    assert "Traceback" not in err
    log = Path(err.split("The full report is in ")[1].split(";")[0])
    assert "disk on fire" in log.read_text() and "Traceback" in log.read_text()
    log.unlink()


def test_ctrl_c_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(validate_cmd, "run_validate", interrupted)
    assert cli_main.main(["validate"]) == 130
    assert "Interrupted." in capsys.readouterr().err


def test_bad_project_file_is_reported_like_a_spec(tmp_path: Path) -> None:
    (tmp_path / "evalhub.yaml").write_text("specs: [evals]\nexecutors: {concurency: 3}\n")
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert "evalhub.yaml:2:13: executors.concurency: unknown field 'concurency'" in result.stdout
    assert "did you mean 'concurrency'?" in result.stdout
    other = run_cli("plan", cwd=tmp_path)  # every other command reports it on stderr
    assert other.code == 1
    assert "evalhub.yaml:2:13: executors.concurency: unknown field 'concurency'" in other.stderr


def test_ledger_dir_must_stay_inside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "evalhub.yaml").write_text("specs: [evals]\nledger: {dir: ../elsewhere}\n")
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert (
        "evalhub.yaml:2:15: ledger.dir: the ledger directory must be a path inside the repository"
        in result.stdout
    )
    assert "hint: write a path relative to the repository, e.g. results" in result.stdout


def test_the_program_spares_its_last_collection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run as the program (argv from sys.argv), evalhub freezes the collector before exiting
    (bench/apply_bench.py: ~0.45 s of each apply); called with arguments, as a library or a
    test does, it leaves the collector alone."""
    assert gc.get_freeze_count() == 0
    assert cli_main.main(["--version"]) == 0
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(sys, "argv", ["evalhub", "--version"])
    try:
        assert cli_main.main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert __version__ in capsys.readouterr().out


def test_a_frozen_exit_still_writes_everything(tmp_path: Path) -> None:
    """Exit handlers and stream flushes still run: a buffered write and an atexit handler of
    the process both reach their files."""
    script = tmp_path / "run.py"
    script.write_text(
        "import atexit, sys\n"
        "from evalhub.cli.main import main\n"
        f"atexit.register(lambda: open({str(tmp_path / 'atexit')!r}, 'w').write('ran'))\n"
        "sys.stdout.write('x' * 100000)\n"
        "sys.argv = ['evalhub', '--version']\n"
        "sys.exit(main())\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("x" * 100000) and __version__ in out
    assert (tmp_path / "atexit").read_text() == "ran"
