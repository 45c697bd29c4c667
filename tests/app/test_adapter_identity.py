"""A bring-your-own adapter's code is part of its units' identity (issue 12, item 15): editing
the adapter's module under the repository plans a run naming the file; built-in adapters keep
their identities."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalhub.adapters.spec_files import adapter_files
from evalhub.core.fingerprint import unit_identity
from evalhub.core.resolve import adapter_code, adapter_code_key
from tests.conftest import run_cli
from tests.core.test_fingerprint import DIGESTS, prints, resolved
from tests.fake_openai import Script, fake_openai
from tests.project import make_project, unit_runs
from tests.specs import BASE

PINNED = [
    "c51cb6ec9fa0fab7e51270954703d87b98a445e486b9b78f413f115c944fc54e",
    "2868a5d8488a8c6084e7104142520dcf8010616353d59e6c4f3c693f9b59db8c",
]

ECHO = """from evalhub.core.job import JobResults


class Echo:
    def run_benchmark_job(self, job, callbacks):
        return JobResults(
            fingerprint=job.fingerprint,
            status="succeeded",
            metrics={"contains": SCORE, "refusal": SCORE},
            primary_metric=job.spec.primary_metric,
            framework="echo",
            framework_version="1",
        )
"""


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", "sk-evalhub-test-" + "e" * 24)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def custom_project(root: Path, url: str) -> Path:
    make_project(root, url)
    package = root / "team_adapters"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "echo.py").write_text(ECHO.replace("SCORE", "1.0"))
    (package / "notes.txt").write_text("not code\n")
    providers = root / "evals" / "providers.yaml"
    providers.write_text(
        providers.read_text().replace("adapter: builtin", "adapter: team_adapters.echo:Echo")
    )
    return root


def test_changing_a_custom_adapters_code_plans_a_run_naming_the_file(tmp_path: Path) -> None:
    with fake_openai(Script()) as (url, _):
        root = custom_project(tmp_path, url)
        applied = run_cli("apply", "--yes", cwd=root, timeout=300)
        assert applied.code == 0, applied.output
        assert [s for _, _, s in unit_runs(root)] == ["FINISHED", "FINISHED"]

        (root / "team_adapters" / "notes.txt").write_text("edited, still not code\n")
        unchanged = run_cli("plan", "--detailed-exitcode", cwd=root)
        assert unchanged.code == 0 and "No changes." in unchanged.stdout, unchanged.output

        echo = root / "team_adapters" / "echo.py"
        echo.write_text(ECHO.replace("SCORE", "0.5"))
        plan = run_cli("plan", "--detailed-exitcode", cwd=root)
        assert plan.code == 2, plan.output
        assert "quality  run  (2 units)" in plan.stdout, plan.stdout
        assert "team_adapters/echo.py" in plan.stdout, plan.stdout

        applied = run_cli("apply", "--yes", cwd=root, timeout=300)
        assert applied.code == 0, applied.output
        (root / "team_adapters" / "__init__.py").write_text("# the package's own code\n")
        plan = run_cli("plan", "--detailed-exitcode", cwd=root)
        assert plan.code == 2 and "team_adapters/__init__.py" in plan.stdout, plan.stdout


def test_adapter_files_are_the_module_and_its_package_inits_inside_the_repository(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg" / "sub").mkdir(parents=True)
    for name in ("pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/mod.py", "pkg/other.py"):
        (repo / name).write_text(f"# {name}\n")
    found = adapter_files([repo], "pkg.sub.mod", repo)
    assert [p.relative_to(repo.resolve()).as_posix() for p in found] == [
        "pkg/__init__.py",
        "pkg/sub/__init__.py",
        "pkg/sub/mod.py",
    ]
    assert adapter_files([repo], "installed.elsewhere", repo) == []  # an installed package
    outside = tmp_path / "outside.py"
    outside.write_text("# not the repository's\n")
    (repo / "linked.py").symlink_to(outside)
    assert adapter_files([repo], "linked", repo) == []


def custom(*, code: str | None) -> list[str]:
    """The in-memory specs of tests/core/test_fingerprint.py, the provider a custom adapter whose
    module file has digest `code` (None: not in the repository)."""
    digests = dict(DIGESTS)
    if code is not None:
        digests[adapter_code_key("team.mod:A", "team/mod.py")] = code
    texts = [t.replace("adapter: builtin", "adapter: team.mod:A") for t in BASE]
    return prints(resolved(*texts, digests=digests))[1]


def test_adapter_code_is_identity_only_for_a_custom_adapter_in_the_repository() -> None:
    evaluation = resolved(*BASE)  # a built-in provider: identities as pinned by the goldens
    assert all("code" not in unit_identity(u)["provider"] for u in evaluation.units)
    assert all(u.provider.code == {} for u in evaluation.units)
    installed = custom(code=None)
    one, other = custom(code="sha256:" + "1" * 64), custom(code="sha256:" + "2" * 64)
    assert len({tuple(installed), tuple(one), tuple(other)}) == 3
    # Pinned, as the goldens pin built-in providers (FINGERPRINT_VERSION 1).
    assert one == PINNED


def test_adapter_code_keys_never_collide_with_spec_paths() -> None:
    digests = {adapter_code_key("team.mod:A", "team/mod.py"): "sha256:1", "data/x.jsonl": "2"}
    assert adapter_code(digests, "team.mod:A") == {"team/mod.py": "sha256:1"}
    assert adapter_code(digests, "builtin") == {}
