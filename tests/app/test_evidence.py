"""`evalhub evidence` on a real spec repository (real applies, real signed results in the
project's OCI layout, real git history): the archive is deterministic, its VERIFY.md steps
and verify_evidence.py succeed without evalhub, and a one-byte change to any layer — or a
ledger edited with its checksums redone — makes them fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_gitops import POLICY, applied, cli, edit, new_repo
from tests.app.test_gitops import endpoint as endpoint  # a fixture
from tests.app.test_gitops import environment as environment  # a fixture
from tests.app.test_ledger_integrity import commit_all, ssh_key
from tests.app.test_ledger_integrity import trusted_repo as trusted_repo

# Run the script with evalhub made unimportable: it must need nothing of ours.
NO_EVALHUB = (
    "import runpy, sys; sys.modules['evalhub'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def packed(root: Path, out: Path, *args: str) -> Path:
    result = cli(root, "evidence", *args, "--out", str(out))
    assert result.code == 0, result.output
    return out


def extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "evidence"


def verify_script(evidence: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", NO_EVALHUB, str(evidence / "verify_evidence.py"), str(evidence)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def shell_steps(evidence: Path) -> list[str]:
    """The ```sh blocks of VERIFY.md that use only standard tools (steps 1 and 2)."""
    text = (evidence / "VERIFY.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [b for b in blocks if "pip install" not in b]


def run_shell(evidence: Path, step: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + step],
        cwd=evidence,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def history(tmp_path: Path, endpoint: Any) -> Path:
    """A repository with two ledger revisions of `quality`, both signed and published."""
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    edit(root, "collections.yaml", "weight: 2", "weight: 3", "reweigh")
    applied(root)
    return root


def test_the_evidence_verifies_without_evalhub_and_is_deterministic(
    tmp_path: Path, history: Path
) -> None:
    first = packed(history, tmp_path / "a.tar.gz", "--policy", "promote")
    second = packed(history, tmp_path / "b.tar.gz", "quality")
    assert first.read_bytes() == second.read_bytes()  # same inputs, same bytes

    evidence = extract(first, tmp_path / "x")
    names = sorted(p.relative_to(evidence).as_posix() for p in evidence.rglob("*") if p.is_file())
    assert {"VERIFY.md", "verify_evidence.py", "SHA256SUMS", "evidence.json"} <= set(names)
    assert "ledger/quality.json" in names and "transcripts/audit.json" in names
    assert "transcripts/verify-quality.json" in names and "keys/default.pem" in names
    assert len([n for n in names if n.startswith("git/objects/commit/")]) == 2
    assert (evidence / "ledger" / "quality.json").read_bytes() == (
        history / "results" / "quality.json"
    ).read_bytes()

    steps = shell_steps(evidence)
    assert len(steps) == 2
    for step in steps:
        done = run_shell(evidence, step)
        assert done.returncode == 0 and "BAD" not in done.stdout, done
    result = verify_script(evidence)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED: 0 check(s) failed" in result.stdout
    assert "FAIL" not in result.stdout
    assert "quality: the envelope is signed by the trusted key sha256:" in result.stdout
    assert "is the ledger file of the last commit" in result.stdout


def test_a_one_byte_change_to_any_layer_fails_verification(tmp_path: Path, history: Path) -> None:
    archive = packed(history, tmp_path / "e.tar.gz", "quality")
    pristine = extract(archive, tmp_path / "pristine")
    index = (pristine / "oci" / "index.json").read_text()
    blobs = sorted((pristine / "oci" / "blobs" / "sha256").iterdir())
    # Every blob: layers (result, spec, environment), manifests, the envelope, the config.
    assert len(blobs) >= 8, [b.name for b in blobs]
    assert index
    for blob in blobs:
        copy = tmp_path / f"t-{blob.name[:12]}"
        shutil.copytree(pristine, copy)
        target = copy / "oci" / "blobs" / "sha256" / blob.name
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        result = verify_script(copy)
        assert result.returncode == 1, (blob.name, result.stdout)
        assert (
            f"FAIL  every file hashes as SHA256SUMS says (not: ['oci/blobs/sha256/{blob.name}'])"
            in result.stdout
        )
        assert any(run_shell(copy, s).returncode != 0 for s in shell_steps(copy)), blob.name


def test_a_one_byte_change_to_any_git_object_fails_verification(
    tmp_path: Path, history: Path
) -> None:
    pristine = extract(packed(history, tmp_path / "e.tar.gz", "quality"), tmp_path / "pristine")
    objects = sorted((pristine / "git" / "objects").glob("*/*"))
    # Two ledger commits, each with its root tree, the results/ tree and the ledger blob.
    assert sorted({o.parent.name for o in objects}) == ["blob", "commit", "tree"]
    assert len([o for o in objects if o.parent.name == "commit"]) == 2
    for obj in objects:
        copy = tmp_path / f"t-{obj.parent.name}-{obj.name[:12]}"
        shutil.copytree(pristine, copy)
        target = copy / "git" / "objects" / obj.parent.name / obj.name
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        result = verify_script(copy)
        assert result.returncode == 1, (obj, result.stdout)
        assert "git objects hash to their ids (not: " in result.stdout
        git_step = next(s for s in shell_steps(copy) if "sha1sum" in s)
        done = run_shell(copy, git_step)
        assert (
            done.returncode != 0 and f"BAD git/objects/{obj.parent.name}/{obj.name}" in done.stdout
        )


def test_an_edited_ledger_with_fresh_checksums_fails_verification(
    tmp_path: Path, history: Path
) -> None:
    evidence = extract(packed(history, tmp_path / "e.tar.gz", "quality"), tmp_path / "x")
    ledger = evidence / "ledger" / "quality.json"
    ledger.write_text(ledger.read_text().replace('"verdict": "pass"', '"verdict": "fail"', 1))
    # The forger redoes SHA256SUMS: the files agree with it, the signature does not.
    sums = subprocess.run(
        [
            "bash",
            "-c",
            "find . -type f ! -name SHA256SUMS | sed 's|^\\./||' | sort | xargs sha256sum",
        ],
        cwd=evidence,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (evidence / "SHA256SUMS").write_text(sums)
    result = verify_script(evidence)
    assert result.returncode == 1
    assert "ok    every file hashes as SHA256SUMS says" in result.stdout
    assert (
        "FAIL  quality: verdict: signed 'pass', result layer 'pass', ledger 'fail'" in result.stdout
    )
    assert (
        "FAIL  quality: ledger/quality.json is the ledger file of the last commit" in result.stdout
    )


def test_signed_ledger_commits_are_checked_with_ssh_keygen(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    maintainer = ssh_key(tmp_path, "maintainer")
    root = trusted_repo(tmp_path, url, POLICY, maintainer)
    applied(root)
    # Re-sign the ledger commit as the maintainer (what the main workflow's push step does).
    subprocess.run(["git", "-C", str(root), "reset", "-q", "--soft", "HEAD~1"], check=True)
    commit_all(root, "evalhub: record quality", maintainer)
    evidence = extract(packed(root, tmp_path / "e.tar.gz", "quality"), tmp_path / "x")
    assert (evidence / "git" / "allowed_signers").is_file()
    result = verify_script(evidence)
    assert result.returncode == 0, result.stdout
    assert "SSH signature by ledger@example.com is good" in result.stdout


def test_evidence_errors_are_clean(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    result = cli(root, "evidence", "--out", str(tmp_path / "e.tar.gz"))
    assert result.code == 1 and "name the evaluations to pack" in result.output
    result = cli(root, "evidence", "quality", "--out", str(tmp_path / "e.tar.gz"))
    assert result.code == 1 and "no ledger entry for 'quality'" in result.output
    applied(root)
    (root / "results" / "quality.json").write_text(
        (root / "results" / "quality.json")
        .read_text()
        .replace('"verdict": "pass"', '"verdict": "fail"')
    )
    result = cli(root, "evidence", "quality", "--out", str(tmp_path / "e.tar.gz"))
    assert result.code == 1 and "differs from its last commit" in result.output
    assert not (tmp_path / "e.tar.gz").exists()
    git_ = ["git", "-C", str(root), "checkout", "-q", "--", "results/quality.json"]
    subprocess.run(git_, check=True)
    shutil.rmtree(root / ".evalhub" / "oci")  # the signed result is gone from the store
    result = cli(root, "evidence", "quality", "--out", str(tmp_path / "e.tar.gz"))
    assert result.code == 1 and "has no quality-" in result.output, result.output
    assert not (tmp_path / "e.tar.gz").exists()


@pytest.mark.slow
def test_the_evidence_verifies_in_a_fresh_venv_holding_only_securesystemslib(
    tmp_path: Path, history: Path
) -> None:
    evidence = extract(packed(history, tmp_path / "e.tar.gz", "quality"), tmp_path / "x")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "securesystemslib[crypto]==1.6.0"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    python = str(venv / "bin" / "python")
    alone = subprocess.run([python, "-c", "import evalhub"], cwd=tmp_path, check=False)
    assert alone.returncode != 0  # nothing of evalhub in this environment
    result = subprocess.run(
        [python, "verify_evidence.py", "."],
        cwd=evidence,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "VERIFIED: 0 check(s) failed" in result.stdout, result.stdout
