"""The MLflow state store against a real `mlflow server` (HTTP), on a SQLite backend that the
SQL reader can read too: both readers must see the same State."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.mlflow import search_reader, values
from evalhub.adapters.mlflow.search_reader import SearchReader
from evalhub.adapters.mlflow.sql_reader import SqlReader
from evalhub.adapters.mlflow_store import MlflowStateStore
from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.fingerprint import unit_fingerprint
from evalhub.core.plan import make_plan
from tests.adapters.test_mlflow_store import FP_A, FP_B, client, new_run, record

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from mlflow_server import Server, free_port, serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mlflow-server")
    with serving(root, root / "m.db") as running:
        yield running


def test_both_readers_see_the_same_state(server: Server) -> None:
    http = MlflowStateStore.open(server.url, None)
    assert isinstance(http.reader, SearchReader)
    # Heads that move, a failed head, a run never finished, an evaluation run, a child run.
    record(http, new_run("quality/faq", FP_A), metrics={"accuracy": 0.5})
    record(http, new_run("quality/faq", FP_B), metrics={"accuracy": 0.75}, params={"k": "v"})
    record(http, new_run("quality/tone", "c" * 64), status="failed", error="boom")
    http.start_run(new_run("quality/tone", "c" * 64))
    http.start_run(new_run("quality/new", "d" * 64))
    parent = record(http, new_run("quality", "e" * 64, kind="evaluation"), metrics={"score": 1.0})
    record(http, new_run("other/faq", FP_A, experiment="evalhub/other", parent=parent))
    with_artifacts = record(http, new_run("other/tone", "f" * 64), artifacts={"r.json": b"[]"})
    other_tool = client(server.url).create_run("0", tags={"team": "else"})
    client(server.url).delete_run(record(http, new_run("gone/faq", "9" * 64)))

    wanted = [FP_A, FP_B, "c" * 64, "d" * 64, "f" * 64, "9" * 64, "0" * 64]
    over_http = http.read(wanted)
    sql = MlflowStateStore.open(f"sqlite:///{server.db}", None)
    assert isinstance(sql.reader, SqlReader)
    assert sql.read(wanted) == over_http

    assert {(r.name, r.status) for r in over_http.heads} == {
        ("quality/faq", "succeeded"),
        ("quality/tone", "failed"),
        ("quality", "succeeded"),
        ("other/faq", "succeeded"),
        ("other/tone", "succeeded"),
    }
    assert {(r.name, r.status) for r in over_http.by_fingerprint} == {
        ("quality/tone", "failed"),
        ("quality/tone", "running"),
        ("quality/new", "running"),
    }
    assert other_tool.info.run_id not in {r.run_id for r in over_http.heads}
    artifacts = client(server.url).list_artifacts(with_artifacts)
    assert [a.path for a in artifacts] == ["r.json"]
    assert over_http.unit_heads()["quality/faq"].metrics == {"accuracy": 0.75}
    assert over_http.unit_heads()["quality/faq"].tags[records.MODEL] == "assistant"

    # Runs a killed apply left running: both readers find the same, and marking them over
    # HTTP leaves none for either.
    running = sorted(http.reader.running())
    assert len(running) == 2 and running == sql.reader.running()
    assert sorted(http.fail_interrupted_runs()) == running
    assert http.reader.running() == [] and sql.reader.running() == []


def test_an_unreachable_server_fails_fast_with_a_hint() -> None:
    url = f"http://alice:s3cret@127.0.0.1:{free_port()}"  # nothing listens there
    store = MlflowStateStore.open(url, None)
    start = time.monotonic()
    with pytest.raises(StateError) as error:
        store.read([FP_A])
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"took {elapsed:.1f} s"  # a guard against minutes of retries
    message = f"{error.value} {error.value.hint}"
    assert url.replace("alice:s3cret@", "") in message
    assert "s3cret" not in message
    assert "tracking server running" in error.value.hint
    with pytest.raises(StateError):
        store.start_run(new_run())


# -- a bounded number of searches ------------------------------------------------------------------


class Counted:
    """The filters of the searches a SearchReader sends (every search goes through `_search`)."""

    def __init__(self, reader: SearchReader) -> None:
        self.filters: list[str] = []
        inner = reader._search

        def search(experiments: list[str], filter_string: str, limit: int) -> Iterator[Any]:
            self.filters.append(filter_string)
            return inner(experiments, filter_string, limit)

        reader._search = search


def fp(n: int) -> str:
    return hashlib.sha256(f"unit {n}".encode()).hexdigest()


def test_a_read_is_a_bounded_number_of_searches_however_many_units_are_pending(
    server: Server,
) -> None:
    http = MlflowStateStore.open(server.url, None)
    # 12 units whose head failed after an older success of the same fingerprint (the reader
    # must find both), and one interrupted run: all pending.
    for n in range(12):
        record(http, new_run(f"bounded/u{n}", fp(n), experiment="evalhub/bounded"))
        record(http, new_run(f"bounded/u{n}", fp(n), experiment="evalhub/bounded"), "failed")
    http.start_run(new_run("bounded/u99", fp(99), experiment="evalhub/bounded-2"))
    reader = http.reader
    assert isinstance(reader, SearchReader)
    counted = Counted(reader)
    sql = MlflowStateStore.open(f"sqlite:///{server.db}", None)

    searches = []
    for never_run in (0, 50, 450):  # pending: 13, 63, 463
        wanted = [fp(n) for n in (*range(12), 99)] + [fp(1000 + n) for n in range(never_run)]
        counted.filters.clear()
        state = http.read(wanted)
        assert state == sql.read(wanted)
        assert {r.fingerprint for r in state.by_fingerprint} == {fp(n) for n in (*range(12), 99)}
        assert len(state.by_fingerprint) == 25  # 12 successes, 12 failures, 1 interrupted
        assert not any("evalhub.fingerprint" in f for f in counted.filters)
        searches.append(len(counted.filters))
    digests = [-(-(13 + n) // search_reader.DIGESTS_PER_SEARCH) for n in (0, 50, 450)]
    assert [s - d for s, d in zip(searches, digests, strict=True)] == [searches[0] - 1] * 3
    assert searches[0] - 1 <= 1 + search_reader.HEAD_PARTS  # the legacy probe and the heads


def test_runs_recorded_without_their_unit_input_are_found_one_by_one_until_indexed(
    server: Server,
) -> None:
    http = MlflowStateStore.open(server.url, None)
    mlflow = client(server.url)
    # A unit run as an evalhub before unit inputs recorded it: its tags, no input, no lookup.
    old = new_run("legacy/faq", fp(500), experiment="evalhub/legacy")
    experiment = mlflow.create_experiment("evalhub/legacy")
    tags = {k: v for k, v in values.tags(old.all_tags()).items() if k != records.LOOKUP}
    legacy_id = mlflow.create_run(experiment, tags={**tags, records.STATUS: "failed"}).info.run_id
    mlflow.set_terminated(legacy_id, "FAILED")
    record(http, new_run("legacy/faq", fp(501), experiment="evalhub/legacy"), "failed")

    reader = http.reader
    assert isinstance(reader, SearchReader)
    counted = Counted(reader)
    wanted = [fp(500), fp(501)]
    sql = MlflowStateStore.open(f"sqlite:///{server.db}", None)
    before = http.read(wanted)
    assert before == sql.read(wanted)
    assert legacy_id in {r.run_id for r in before.by_fingerprint}
    assert sum("evalhub.fingerprint" in f for f in counted.filters) == 2  # one by one

    done: list[tuple[int, int]] = []
    assert http.index_runs(lambda d, t: done.append((d, t))) == 1
    assert done == [(1, 1)]
    inputs = mlflow.get_run(legacy_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [
        (records.UNIT_INPUT, fp(500)[:32])
    ]
    counted.filters.clear()
    after = http.read(wanted)
    assert after == sql.read(wanted)
    assert [r.run_id for r in after.by_fingerprint] == [r.run_id for r in before.by_fingerprint]
    assert after.by_fingerprint[0].tags[records.LOOKUP] == records.LOOKUP_UNIT_INPUT
    assert not any("evalhub.fingerprint" in f for f in counted.filters)  # in bulk now
    assert http.index_runs() == 0  # nothing left


@pytest.mark.slow
def test_the_server_reader_and_the_sql_reader_agree_on_the_bench_fixture(
    tmp_path: Path,
) -> None:
    """The benchmark's store (a year of CI: heads, failures, interruptions, edits) served
    over HTTP reads as the same State as the same file read through SQL."""
    import store_fixture

    params = store_fixture.Params(evaluations=40, unit_runs=2_000)
    fixture = store_fixture.build(params, cache=tmp_path / "cache")
    db = tmp_path / "m.db"
    shutil.copy(fixture.db, db)
    evaluations = store_fixture.resolve_repo(fixture.repo)
    current = sorted({unit_fingerprint(u) for e in evaluations for u in e.units})
    everything = sorted(
        {
            r[0]
            for r in sqlite3.connect(db).execute(
                "SELECT value FROM tags WHERE key = ?", (records.FINGERPRINT,)
            )
        }
    )
    sql = MlflowStateStore.open(f"sqlite:///{db}", None)
    with serving(tmp_path, db, workers=2) as running:
        http = MlflowStateStore.open(running.url, None)
        for wanted in (current, everything):
            over_http = http.read(wanted)
            assert over_http == sql.read(wanted)
            assert over_http.by_fingerprint
        plan_http = make_plan(evaluations, http.read_alongside(lambda: current))
        assert plan_http == make_plan(evaluations, sql.read(current))
        assert plan_http.summary.run and plan_http.summary.retry and plan_http.summary.noop


def test_a_read_alongside_failing_work_raises_its_error_and_keeps_nothing(server: Server) -> None:
    http = MlflowStateStore.open(server.url, None)
    record(http, new_run("alongside/faq", fp(700), experiment="evalhub/alongside"))

    def broken_specs() -> list[str]:
        raise ValueError("specs do not load")

    with pytest.raises(ValueError, match="specs do not load"):
        http.read_alongside(broken_specs)
    state = http.read_alongside(lambda: [fp(700), fp(701)])
    assert state == MlflowStateStore.open(f"sqlite:///{server.db}", None).read([fp(700), fp(701)])
    assert "alongside/faq" in state.unit_heads()


def test_an_unreachable_server_fails_a_read_alongside_with_the_store_error() -> None:
    store = MlflowStateStore.open(f"http://127.0.0.1:{free_port()}", None)
    with pytest.raises(StateError) as error:
        store.read_alongside(lambda: [FP_A])
    assert "tracking server running" in (error.value.hint or "")
