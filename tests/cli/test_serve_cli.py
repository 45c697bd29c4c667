"""`evalhub serve` refuses what it must before it binds anything: a public address without
tokens, a token variable that is not set — exit 1, the reason and the fix, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalhub.cli.main import main
from tests.project import make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    monkeypatch.chdir(root)
    return root


def test_a_public_address_without_tokens_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "9"]) == 1
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without tokens" in err and "hint:" in err
    assert "Traceback" not in err and "evalhub serve: http" not in err


def test_a_token_variable_that_is_not_set_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SERVE_WRITE", raising=False)
    config = project / "evalhub.yaml"
    config.write_text(config.read_text() + "serve: {write_token_env: SERVE_WRITE}\n")
    assert main(["serve", "--port", "9"]) == 1
    assert "serve.write_token_env names SERVE_WRITE, which is not set" in capsys.readouterr().err
