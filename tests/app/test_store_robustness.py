"""The state store against an unlucky operator (issue 12, items 9, 10, 13 and 14): one store
spelled two ways, a writer killed mid-transaction, an apply killed mid-run, and a project
copied to another directory. Real processes, a real MLflow SQLite store, the scripted
OpenAI fake."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, unit_runs

SECRET = "sk-evalhub-test-" + "q" * 24
APPLY = [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_TEST_API_KEY", SECRET)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def slow(seconds: float):  # type: ignore[no-untyped-def]
    def reply(prompt: str) -> str:
        time.sleep(seconds)
        return answer(prompt)

    return reply


def apply(root: Path, *args: str) -> str:
    result = run_cli("apply", "--yes", *args, cwd=root, timeout=300)
    output = result.stdout + "\n" + result.stderr
    assert result.code == 0 and "Traceback" not in output, output
    return output


def statuses(root: Path) -> list[str]:
    return [status for _, _, status in unit_runs(root)]


# -- item 9 ---------------------------------------------------------------------------------------


def test_apply_lock_is_keyed_by_the_store_not_the_uri_spelling(tmp_path: Path) -> None:
    """Two applies at once against one SQLite file spelled two ways: the second waits for the
    first and then runs nothing; every unit is recorded once."""
    with fake_openai(Script(answer=slow(0.3))) as (url, script):
        root = make_project(tmp_path, url)
        (root / ".evalhub").mkdir()
        spellings = [
            f"sqlite:///{root}/.evalhub/mlflow.db",
            f"sqlite:///{root}/.evalhub/./mlflow.db",
        ]
        procs = [
            subprocess.Popen(
                APPLY,
                cwd=root,
                env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for uri in spellings
        ]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert script.generations == 5  # 3 + 2 rows, once
    assert any("waiting" in o for o in outputs), outputs
    assert any("No changes." in o for o in outputs), outputs
    assert statuses(root) == ["FINISHED", "FINISHED"]  # no unit recorded twice


# -- item 10 --------------------------------------------------------------------------------------

WRITER = """
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")  # spill modified pages into the file before commit
db.execute("BEGIN IMMEDIATE")
for _ in range(400):  # enough changed pages to spill whatever the tags hold
    db.execute("UPDATE tags SET value = value || 'x'")
print("dirty", flush=True)
time.sleep(60)
"""


def make_hot_journal(db: Path) -> None:
    """A writer killed in the middle of a transaction: the file holds uncommitted pages and
    the rollback journal the committed ones."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "dirty"
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)
    assert db.with_name(db.name + "-journal").stat().st_size > 0


def test_a_hot_sqlite_journal_is_rolled_back_and_no_record_is_lost(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path, url)
        apply(root)
        db = root / ".evalhub" / "mlflow.db"
        recorded = unit_runs(root)
        make_hot_journal(db)
        # What main did: a read-only open of a hot journal cannot roll it back.
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("SELECT 1 FROM runs").fetchall()
        reader.close()
        plan = run_cli("plan", "--detailed-exitcode", cwd=root)
        assert plan.code == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr
        assert unit_runs(root) == recorded  # the committed records, intact
        assert "No changes." in apply(root)
        assert script.generations == 5


def test_store_errors_never_advise_discarding_the_store(tmp_path: Path) -> None:
    """An MLflow schema this MLflow does not know (a newer MLflow wrote it): the hint says how
    to read it, never to move the store (and every record) aside."""
    with fake_openai(Script(answer=answer)) as (url, _):
        root = make_project(tmp_path, url)
        apply(root)
        db = root / ".evalhub" / "mlflow.db"
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
        data = root / "evals" / "data" / "refusals.jsonl"
        data.write_text(data.read_text() + json.dumps({"id": "p9", "question": "order 9?"}) + "\n")
        result = run_cli("apply", "--yes", cwd=root, timeout=300)
        output = result.stdout + result.stderr
        assert result.code == 1 and "Traceback" not in output, output
        assert "move it aside" not in output and "empty store" not in output, output
        assert "newer MLflow" in output, output
        assert len(unit_runs(root)) == 2


# -- item 13 (killed runs) ------------------------------------------------------------------------


def running(root: Path) -> bool:
    """Whether MLflow holds a run as running (read-only: a poll must not create the file)."""
    db = root / ".evalhub" / "mlflow.db"
    if not db.exists():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            found = conn.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'").fetchone()
    except sqlite3.Error:  # its tables are not created yet
        return False
    return bool(found[0])


def test_runs_of_a_killed_apply_are_marked_killed_by_the_next_apply(tmp_path: Path) -> None:
    with fake_openai(Script(answer=slow(20.0))) as (url, script):
        root = make_project(tmp_path, url)
        proc = subprocess.Popen(
            [*APPLY, "-j", "1"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not running(root) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the apply and its unit process, no clean-up
        proc.wait(timeout=30)
        assert "RUNNING" in statuses(root)
        script.answer = answer
        apply(root)
    runs = unit_runs(root)
    assert "RUNNING" not in statuses(root)
    killed = [name for name, _, status in runs if status == "KILLED"]
    assert len(killed) == 1, runs
    finished = sorted(name for name, _, status in runs if status == "FINISHED")
    assert finished == ["quality/refusals", "quality/returns-qa"]  # and then recorded once each
    with sqlite3.connect(root / ".evalhub" / "mlflow.db") as conn:
        killed_runs = conn.execute(
            "SELECT r.run_uuid, t.value FROM runs r LEFT JOIN tags t "
            "ON r.run_uuid = t.run_uuid AND t.key = 'evalhub.error' WHERE r.status = 'KILLED'"
        ).fetchall()
        left_running = conn.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'")
        assert left_running.fetchone() == (0,)  # the evaluation run too
    assert len(killed_runs) == 2  # the unit and its evaluation's run
    assert {error for _, error in killed_runs} == {
        "interrupted: the apply that ran it stopped before recording a result"
    }


# -- item 14 --------------------------------------------------------------------------------------


def files_under(root: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def signed_payloads(layout: Path) -> list[bytes]:
    """The decoded payloads of every DSSE envelope in an OCI layout (the signed predicates)."""
    found = []
    for blob in (layout / "blobs" / "sha256").iterdir():
        try:
            document = json.loads(blob.read_bytes())
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(document, dict) and "payload" in document and "signatures" in document:
            found.append(base64.b64decode(document["payload"]))
    return found


def test_no_machine_paths_in_shared_records(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "original", url)
        assert run_cli("keys", "generate", cwd=root).code == 0
        apply(root)
        machine = str(root.resolve())
        ledger = [p.read_bytes() for p in (root / "results").glob("*.json")]
        payloads = signed_payloads(root / ".evalhub" / "oci")
        assert ledger and payloads
        for record in [*ledger, *payloads]:
            assert machine.encode() not in record
        assert b"sqlite:///.evalhub/mlflow.db" in ledger[0]  # as configured: the embedded store
        with sqlite3.connect(root / ".evalhub" / "mlflow.db") as conn:
            locations = [r[0] for r in conn.execute("SELECT artifact_location FROM experiments")]
            artifact_uris = [r[0] for r in conn.execute("SELECT artifact_uri FROM runs")]
        evalhub_locations = [x for x in locations if x.startswith("evalhub-store:")]
        assert evalhub_locations and not [x for x in evalhub_locations if machine in x]
        assert artifact_uris and not [x for x in artifact_uris if machine in x]

        # A copy of the project records into its own directory, never the original's.
        copy = tmp_path / "copy"
        shutil.copytree(root, copy, symlinks=True)
        before = files_under(root)
        data = copy / "evals" / "data" / "refusals.jsonl"
        data.write_text(
            data.read_text() + json.dumps({"id": "p3", "question": "Show order 7's email."}) + "\n"
        )
        apply(copy)
        assert script.generations == 5 + 3  # the changed unit ran, in the copy
    assert files_under(root) == before
    assert list((copy / ".evalhub" / "artifacts").rglob("result*")) != []
