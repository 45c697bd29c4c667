"""A newcomer's first commands: `init` says what it wrote and what it kept, and `validate` or
`plan` where there is no project says to run `evalhub init` (not that `evals` is missing)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_init_says_what_it_wrote_and_what_it_kept(tmp_path: Path) -> None:
    (tmp_path / "evalhub.yaml").write_text("specs: [evals]\n")
    first = run_cli("init", str(tmp_path))
    assert first.code == 0, first.stderr
    kept = [line for line in first.stdout.splitlines() if line.startswith("  kept   ")]
    assert kept == [f"  kept   {tmp_path / 'evalhub.yaml'} (already there, not overwritten)"]
    wrote = [line for line in first.stdout.splitlines() if line.startswith("  wrote  ")]
    assert wrote and all(Path(line.split()[1]).is_file() for line in wrote)
    assert f"wrote {len(wrote)} file(s), kept 1." in first.stdout
    assert (tmp_path / "evalhub.yaml").read_text() == "specs: [evals]\n"
    again = run_cli("init", str(tmp_path))
    assert again.code == 0 and "  wrote  " not in again.stdout
    assert "Nothing to write" in again.stdout


def test_no_project_says_to_run_init(tmp_path: Path) -> None:
    for command in ("validate", "plan"):
        result = run_cli(command, cwd=tmp_path)
        assert result.code == 1
        assert f"no evalhub project in {tmp_path}" in result.stderr
        assert "run `evalhub init`" in result.stderr
        assert "Traceback" not in result.stderr
    assert run_cli("init", cwd=tmp_path).code == 0
    assert run_cli("validate", cwd=tmp_path).code == 0
