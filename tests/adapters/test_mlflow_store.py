"""The MLflow state store against a real MLflow SQLite store (no mocks of MLflow)."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from evalhub.adapters.mlflow import boundary
from evalhub.adapters.mlflow.artifacts import resolve
from evalhub.adapters.mlflow.sql_reader import CHUNK, SqlReader
from evalhub.adapters.mlflow_store import MlflowStateStore
from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.state import State

FP_A = "a" * 64
FP_B = "b" * 64


def new_run(
    name: str = "quality/faq",
    fingerprint: str = FP_A,
    *,
    kind: str = "unit",
    identity: dict[str, Any] | None = None,
    experiment: str = "evalhub/quality",
    parent: str | None = None,
    tags: dict[str, str] | None = None,
) -> NewRun:
    evaluation = name.split("/", 1)[0]
    return NewRun(
        kind=kind,  # type: ignore[arg-type]
        name=name,
        evaluation=evaluation,
        fingerprint=fingerprint,
        fingerprint_version=1,
        identity=identity if identity is not None else {"benchmark": name, "fp": fingerprint},
        experiment=experiment,
        parent_run_id=parent,
        tags=tags or {records.MODEL: "assistant"},
    )


def record(store: MlflowStateStore, run: NewRun, status: str = "succeeded", **outcome: Any) -> str:
    run_id = store.start_run(run)
    store.finish_run(run_id, RunOutcome(status=status, **outcome))  # type: ignore[arg-type]
    return run_id


def client(uri: str) -> Any:
    boundary.import_mlflow()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created once by MLflow (its migrations take seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    with boundary.quiet():
        client(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # anything landing in ./mlruns would show up here
    return tmp_path


@pytest.fixture
def store(project: Path, template_db: Path) -> Iterator[MlflowStateStore]:
    state = project / ".evalhub"
    state.mkdir()
    shutil.copy(template_db, state / "mlflow.db")
    yield MlflowStateStore.open(f"sqlite:///{state / 'mlflow.db'}", state / "artifacts")
    assert not (project / "mlruns").exists()


def mlflow_run(store: MlflowStateStore, run_id: str) -> Any:
    with boundary.quiet():
        return client(store.uri).get_run(run_id)


# -- round trip ----------------------------------------------------------------------------------


def test_a_finished_run_reads_back_as_the_head(store: MlflowStateStore) -> None:
    identity = {"model": {"url": "http://x", "temperature": 0.25}, "params": {"limit": 3}, "é": [1]}
    run_id = record(
        store,
        new_run(identity=identity),
        metrics={"accuracy": 0.75, "f1": 0.5},
        tags={records.GIT_COMMIT: "abc123"},
    )
    state = store.read([FP_A])
    (head,) = state.heads
    assert head.run_id == run_id
    assert (head.kind, head.name, head.evaluation) == ("unit", "quality/faq", "quality")
    assert (head.fingerprint, head.fingerprint_version) == (FP_A, 1)
    assert head.status == "succeeded" and head.head
    assert head.identity == identity
    assert head.metrics == {"accuracy": 0.75, "f1": 0.5}
    assert head.tags[records.STATUS] == "succeeded"
    assert head.tags[records.GIT_COMMIT] == "abc123"
    assert head.tags[records.MODEL] == "assistant"
    assert all(k.startswith("evalhub.") for k in head.tags)
    assert head.started > 0
    assert state.unit_runs() == {FP_A: [head]}


def test_metrics_params_and_artifacts_land_in_mlflow(
    store: MlflowStateStore, project: Path
) -> None:
    parent = record(store, new_run("quality", "e" * 64, kind="evaluation"))
    long_value = "x" * 7000
    run_id = record(
        store,
        new_run(parent=parent),
        metrics={f"m{i}": float(i) for i in range(1500)},  # more than one log_batch holds
        params={**{f"p{i}": str(i) for i in range(150)}, "long": long_value},
        artifacts={"results.json": b'{"ok": true}', "logs/run.txt": b"hello"},
    )
    run = mlflow_run(store, run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"faq-{FP_A[:12]}"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert mlflow_run(store, parent).info.run_name == f"quality-{'e' * 12}"
    assert len(run.data.metrics) == 1500 and run.data.metrics["m1499"] == 1499.0
    assert len(run.data.params) == 151
    assert len(run.data.params["long"]) == 6000
    assert run.data.params["long"].endswith("[truncated by evalhub]")
    # Recorded relative to the store (no machine path in it), found beside the store's file.
    assert run.info.artifact_uri.startswith("evalhub-store:artifacts/")
    artifacts = resolve(run.info.artifact_uri, store.uri)
    assert artifacts.is_relative_to(project / ".evalhub" / "artifacts")
    assert (artifacts / "results.json").read_bytes() == b'{"ok": true}'
    assert (artifacts / "logs" / "run.txt").read_bytes() == b"hello"


def test_names_mlflow_refuses_are_made_acceptable(store: MlflowStateStore) -> None:
    """MLflow refuses "," in metric names (lm-eval's "exact_match,strip"): it becomes "_"."""
    run_id = record(
        store,
        new_run(),
        metrics={"exact_match,strip": 0.5, "a//b": 1.0},
        params={"../up": "x", "": "dropped"},
        tags={"evalhub.odd key!": "y"},
    )
    (head,) = store.read([FP_A]).heads
    assert head.metrics == {"exact_match_strip": 0.5, "a__b": 1.0}
    assert head.tags["evalhub.odd key_"] == "y"
    assert mlflow_run(store, run_id).data.params == {"_../up": "x"}


def test_a_failed_run_is_the_head_with_status_failed(store: MlflowStateStore) -> None:
    run_id = record(store, new_run(), status="failed", error="model server\nunreachable")
    state = store.read([FP_A])
    (head,) = state.heads
    assert (head.run_id, head.status) == (run_id, "failed")
    assert head.tags[records.ERROR] == "model server unreachable"
    assert mlflow_run(store, run_id).info.status == "FAILED"
    # A failed head does not settle its fingerprint: its runs are all read.
    assert [r.run_id for r in state.by_fingerprint] == [run_id]


def test_a_run_never_finished_reads_as_running(store: MlflowStateStore) -> None:
    run_id = store.start_run(new_run())
    state = store.read([FP_A])
    assert state.heads == ()
    (run,) = state.by_fingerprint
    assert (run.run_id, run.status, run.head) == (run_id, "running", False)


def test_runs_left_running_are_marked_killed_and_read_as_failed(store: MlflowStateStore) -> None:
    done = record(store, new_run())
    left = store.start_run(new_run("quality/other", FP_B))
    assert store.fail_interrupted_runs() == [left]
    assert store.fail_interrupted_runs() == []  # nothing left running
    runs = {r.run_id: r for r in store.read([FP_B]).by_fingerprint}
    assert runs[left].status == "failed" and runs[left].tags[records.ERROR].startswith("interr")
    assert mlflow_run(store, left).info.status == "KILLED"
    assert mlflow_run(store, done).info.status == "FINISHED"


def test_one_store_spelled_two_ways_has_one_identity(project: Path) -> None:
    db = project / ".evalhub" / "mlflow.db"
    spellings = [f"sqlite:///{db}", f"sqlite:///{project}/.evalhub/./mlflow.db"]
    (project / "link").symlink_to(project / ".evalhub")
    spellings.append(f"sqlite:///{project}/link/mlflow.db")
    assert len({MlflowStateStore.open(u, None).identity for u in spellings}) == 1
    servers = ["http://user:pw@Tracking:80/", "http://tracking", "http://tracking/./"]
    assert len({MlflowStateStore.open(u, None).identity for u in servers}) == 1
    assert MlflowStateStore.open("http://tracking:5000", None).identity != (
        MlflowStateStore.open("http://tracking", None).identity
    )


# -- heads ---------------------------------------------------------------------------------------


def test_the_head_moves_to_the_newest_run_of_a_name(store: MlflowStateStore) -> None:
    old = record(store, new_run(fingerprint=FP_A))
    new = record(store, new_run(fingerprint=FP_B))
    other = record(store, new_run("quality/tone", FP_A))
    state = store.read([FP_A, FP_B])
    assert {(r.name, r.run_id) for r in state.heads} == {
        ("quality/faq", new),
        ("quality/tone", other),
    }
    assert mlflow_run(store, old).data.tags[records.HEAD] == "false"
    # FP_A is settled by the head of quality/tone; the old run is found once asked for alone.
    assert store.read([FP_A]).unit_heads()["quality/faq"].run_id == new


def test_a_head_survives_in_another_experiment(store: MlflowStateStore) -> None:
    """A name's previous head is cleared even when the spec moved it to another experiment."""
    old = record(store, new_run(fingerprint=FP_A, experiment="first"))
    new = record(store, new_run(fingerprint=FP_B, experiment="second"))
    assert [r.run_id for r in store.read([]).heads] == [new]
    assert mlflow_run(store, old).data.tags[records.HEAD] == "false"


def test_a_store_that_did_not_start_the_run_still_moves_the_head(
    store: MlflowStateStore, project: Path
) -> None:
    """Head moves work across processes: a fresh store learns the heads with one bulk read."""
    old = record(store, new_run(fingerprint=FP_A))
    run_id = store.start_run(new_run(fingerprint=FP_B))
    fresh = MlflowStateStore.open(store.uri, project / ".evalhub" / "artifacts")
    fresh.finish_run(run_id, RunOutcome(status="succeeded"))
    assert [r.run_id for r in store.read([]).heads] == [run_id]
    assert mlflow_run(store, old).data.tags[records.HEAD] == "false"


def test_a_crash_between_marking_and_clearing_leaves_two_heads(store: MlflowStateStore) -> None:
    old = record(store, new_run(fingerprint=FP_A))
    new = record(store, new_run(fingerprint=FP_B))
    with boundary.quiet():
        client(store.uri).set_tag(old, records.HEAD, "true")  # as if the clear never happened
    state = store.read([])
    assert {r.run_id for r in state.heads} == {old, new}
    assert state.unit_heads()["quality/faq"].run_id == new


def test_evaluation_runs_are_heads_too(store: MlflowStateStore) -> None:
    run_id = record(store, new_run("quality", "e" * 64, kind="evaluation"), metrics={"score": 0.8})
    state = store.read(["e" * 64])
    assert state.evaluation_heads()["quality"].run_id == run_id
    assert state.evaluation_heads()["quality"].metrics == {"score": 0.8}
    assert state.by_fingerprint == ()  # by_fingerprint holds unit runs only


# -- what is ignored -----------------------------------------------------------------------------


def test_other_tools_runs_and_malformed_runs_are_ignored(store: MlflowStateStore) -> None:
    mine = record(store, new_run())
    good = new_run(fingerprint=FP_B).all_tags()
    malformed = [
        {**good, records.FINGERPRINT_VERSION: "one"},
        {**good, records.IDENTITY: "{not json"},
        {**good, records.IDENTITY: "[1, 2]"},
        {**good, records.KIND: "experiment"},
        {k: v for k, v in good.items() if k != records.NAME},
    ]
    with boundary.quiet():
        mlflow = client(store.uri)
        experiment = mlflow.get_experiment_by_name("evalhub/quality").experiment_id
        mlflow.create_run(experiment, tags={"team": "other"})  # another tool's run
        mlflow.create_run("0", tags={records.HEAD: "true"})  # no kind, no fingerprint
        for tags in malformed:
            run = mlflow.create_run(experiment, tags={**tags, records.HEAD: "true"})
            mlflow.set_terminated(run.info.run_id, "FINISHED")
    state = store.read([FP_A, FP_B])
    assert [r.run_id for r in state.heads] == [mine]
    assert state.by_fingerprint == ()


def test_deleted_runs_and_experiments_are_ignored(store: MlflowStateStore) -> None:
    record(store, new_run())
    running = store.start_run(new_run(fingerprint=FP_B))
    gone = record(store, new_run("other/faq", experiment="evalhub/other"))
    with boundary.quiet():
        mlflow = client(store.uri)
        mlflow.delete_run(running)
        mlflow.delete_experiment(mlflow.get_experiment_by_name("evalhub/quality").experiment_id)
    state = store.read([FP_A, FP_B])
    assert [r.run_id for r in state.heads] == [gone]
    assert state.by_fingerprint == ()


def test_an_identity_too_long_for_a_tag_is_omitted(store: MlflowStateStore) -> None:
    record(store, new_run(identity={"blob": "y" * 9000}))
    (head,) = store.read([FP_A]).heads
    assert head.identity is None


# -- failures ------------------------------------------------------------------------------------


def test_a_corrupt_database_is_a_state_error_and_stays_untouched(project: Path) -> None:
    db = project / ".evalhub" / "mlflow.db"
    db.parent.mkdir()
    noise = random.Random(7).randbytes(64 * 1024)
    db.write_bytes(noise)
    store = MlflowStateStore.open(f"sqlite:///{db}", project / ".evalhub" / "artifacts")
    with pytest.raises(StateError) as read_error:
        store.read([FP_A])
    assert str(db) in str(read_error.value) and read_error.value.hint
    with pytest.raises(StateError):
        store.start_run(new_run())
    assert db.read_bytes() == noise
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]


def test_a_sqlite_file_of_another_application_is_refused(project: Path) -> None:
    db = project / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table runs (id integer)")
    before = db.read_bytes()
    store = MlflowStateStore.open(f"sqlite:///{db}", None)
    with pytest.raises(StateError, match="not an MLflow tracking database"):
        store.read([])
    with pytest.raises(StateError, match="not an MLflow tracking database"):
        store.start_run(new_run())
    assert db.read_bytes() == before


def test_an_unsupported_schema_names_what_is_missing(
    store: MlflowStateStore, project: Path
) -> None:
    db = project / ".evalhub" / "mlflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("alter table latest_metrics rename column is_nan to nan_flag")
    with pytest.raises(StateError, match=r"unsupported MLflow schema .*latest_metrics\.is_nan"):
        store.read([])


def test_reading_an_absent_store_creates_nothing(project: Path) -> None:
    store = MlflowStateStore.open(
        f"sqlite:///{project / '.evalhub' / 'mlflow.db'}",
        project / ".evalhub" / "artifacts",
        create_directory=True,  # the embedded store
    )
    assert store.read([FP_A]) == State()
    assert list(project.iterdir()) == []


def test_an_empty_file_is_an_empty_store_for_reads_and_writes(project: Path) -> None:
    """What SQLite leaves when the first writer stops before creating a table (or when
    something merely opened the path): a new store, not "not an MLflow database"."""
    db = project / "empty.db"
    db.touch()
    store = MlflowStateStore.open(f"sqlite:///{db}", project / "artifacts")
    assert store.read([FP_A]) == State()
    assert store.fail_interrupted_runs() == []
    record(store, new_run())
    assert len(store.read([FP_A]).heads) == 1


def test_a_sqlite_uri_into_a_missing_directory_is_refused_not_an_empty_store(
    project: Path,
) -> None:
    """Issue 12 item 13: a mistyped directory read as an empty store re-ran everything."""
    deeper = MlflowStateStore.open(f"sqlite:///{project / 'no' / 'such' / 'dir' / 'm.db'}", None)
    for attempt in (lambda: deeper.read([]), lambda: deeper.start_run(new_run())):
        with pytest.raises(StateError, match="directory that does not exist") as caught:
            attempt()
        assert caught.value.hint and "tracking_uri" in caught.value.hint
    assert list(project.iterdir()) == []


@pytest.mark.slow
def test_the_first_write_creates_the_store_quietly(tmp_path: Path) -> None:
    """In a child process, to see exactly what reaches the terminal: nothing."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from evalhub.adapters.mlflow_store import MlflowStateStore
        from evalhub.core.records import RunOutcome
        from tests.adapters.test_mlflow_store import new_run
        root = Path({str(tmp_path)!r})
        store = MlflowStateStore.open(
            f"sqlite:///{{root}}/.evalhub/mlflow.db",
            root / ".evalhub" / "artifacts",
            create_directory=True,
        )
        assert store.read(["a" * 64]).heads == ()
        assert not (root / ".evalhub").exists()
        run_id = store.start_run(new_run())
        store.finish_run(run_id, RunOutcome(status="succeeded", artifacts={{"r.json": b"1"}}))
        assert [r.run_id for r in store.read(["a" * 64]).heads] == [run_id]
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".evalhub"]
    assert (tmp_path / ".evalhub" / "mlflow.db").is_file()
    assert (tmp_path / ".evalhub" / "artifacts").is_dir()


def test_reading_a_sql_store_does_not_import_mlflow(store: MlflowStateStore) -> None:
    record(store, new_run())
    code = (
        "import sys; from evalhub.adapters.mlflow_store import MlflowStateStore as S;"
        f"assert len(S.open({store.uri!r}, None).read([]).heads) == 1;"
        "sys.exit(1 if 'mlflow' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- bulk reads ----------------------------------------------------------------------------------


def test_the_sql_reader_reads_in_a_bounded_number_of_statements(store: MlflowStateStore) -> None:
    """The bulk guarantee: a read is a handful of statements, never one per unit. (1 schema
    probe + 1 for the heads + 1 pass over the fingerprints + 1 per 500 runs found.)"""
    rng = random.Random(1)
    fingerprints = sorted(f"{rng.getrandbits(256):064x}" for _ in range(1200))
    # One recorded (failed, so not settled) run in each chunk of the sorted pending list, so
    # that every chunk's tag and metric statements really run.
    recorded = [fingerprints[0], fingerprints[CHUNK + 100], fingerprints[2 * CHUNK + 100]]
    for i, fp in enumerate(recorded):
        record(store, new_run(f"quality/u{i}", fp), status="failed", metrics={"m": 1.0})
    reader = store.reader
    assert isinstance(reader, SqlReader)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(reader.engine, "before_cursor_execute", count)
    state = store.read(fingerprints)
    assert sorted(r.fingerprint for r in state.by_fingerprint) == recorded
    assert all(r.metrics == {"m": 1.0} for r in state.by_fingerprint)
    assert len(statements) <= 10, statements
    statements.clear()
    store.read(fingerprints[:CHUNK])  # up to 500 pending fingerprints: one IN list
    assert len(statements) <= 3, statements
    statements.clear()
    store.read(fingerprints * 10)  # duplicates collapse
    assert len(statements) <= 10


# -- the URI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://alice:s3cret@mlflow.example.com/api", "https://mlflow.example.com/api"),
        ("postgresql+psycopg2://u:p%40ss@db:5432/mlflow", "postgresql+psycopg2://db:5432/mlflow"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db"),
    ],
)
def test_the_uri_shown_holds_no_credentials(uri: str, shown: str) -> None:
    assert MlflowStateStore.open(uri, None).uri == shown


def test_credentials_are_scrubbed_from_messages() -> None:
    text = "API request to https://alice:s3cret@host/api/2.0 failed (see postgresql://u:p@db/x)"
    assert (
        boundary.scrub(text) == "API request to https://host/api/2.0 failed (see postgresql://db/x)"
    )
