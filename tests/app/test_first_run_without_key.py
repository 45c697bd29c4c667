"""A newcomer's first apply has no signing key: apply says so (what happens, what to do), the
gate's failure names `evalhub keys generate`, and once signing starts, audit says how to skip
the history that predates it (`--since`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.app.test_gitops import POLICY, cli, environment  # noqa: F401 (autouse)
from tests.app.test_ledger import git, init_repo
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


def test_first_apply_without_a_key_then_signing(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        (root / "evals" / "policies.yaml").write_text(POLICY)
        init_repo(root)

        first = cli(root, "apply", "--yes", "--commit")
        assert first.code == 0, first.output
        assert "No signing key" in first.stderr and "evalhub keys generate" in first.stderr

        gate = cli(root, "gate")
        assert gate.code == 2
        assert "hint: no signing key is set up" in gate.stdout
        assert "evalhub keys generate" in gate.stdout

        assert cli(root, "keys", "generate").code == 0
        git(root, "add", "evalhub.pub")
        git(root, "commit", "-q", "-m", "trust the project's signing key")
        calls = script.generations
        second = cli(root, "apply", "--yes", "--commit")
        assert second.code == 0, second.output
        assert script.generations == calls  # publishing a recorded result runs nothing
        assert "No signing key" not in second.stderr
        assert cli(root, "gate").code == 0

    audit = cli(root, "audit")
    assert audit.code == 2, audit.output
    found = re.search(r"`evalhub audit --since ([0-9a-f]{12})`", audit.stdout)
    assert found, audit.stdout
    assert "predate signing" in audit.stdout
    since = cli(root, "audit", "--since", found.group(1))
    assert since.code == 0, since.output
    assert "hint:" not in since.stdout
