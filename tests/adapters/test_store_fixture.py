"""The benchmark's bulk store writer leaves exactly what the real adapter leaves.

The same year of runs (small) is written twice: by bench/store_fixture.py's bulk writer
(sqlite3 executemany into MLflow's tables) and through MlflowStateStore (MLflow's client API).
Both stores must hold the same rows and read back as the same State and the same plan, so the
benchmark measures the store evalhub really writes.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.mlflow_store import MlflowStateStore
from evalhub.core.plan import make_plan
from evalhub.core.render_plan import plan_json
from evalhub.core.state import RecordedRun, State

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import store_fixture as sf

pytestmark = pytest.mark.slow

PARAMS = sf.Params(
    evaluations=8,
    unit_runs=100,
    evaluation_history=1,
    changed=0.15,
    failed=0.05,
    interrupted=0.05,
    seed=3,
)


class Written:
    def __init__(self, root: Path) -> None:
        self.root = root
        sf.generate_repo(root / "repo", PARAMS, None)
        self.evaluations = sf.resolve_repo(root / "repo")
        self.runs = sf.history(self.evaluations, PARAMS)
        template = root / "template.db"
        sf.create_schema(template)
        self.bulk_db, self.api_db = root / "bulk.db", root / "api.db"
        shutil.copy(template, self.bulk_db)
        shutil.copy(template, self.api_db)
        self.bulk_ids = sf.write_bulk(self.bulk_db, root / "art", self.runs, PARAMS.seed)
        self.api = MlflowStateStore.open(f"sqlite:///{self.api_db}", root / "art")
        self.api_ids = sf.write_api(self.api, self.runs)
        self.bulk = MlflowStateStore.open(f"sqlite:///{self.bulk_db}", root / "art")
        # Every fingerprint ever recorded, so that reads return every run they can.
        self.fingerprints = sorted({r.run.fingerprint for r in self.runs})
        self.index = {
            **{run_id: i for i, run_id in enumerate(self.bulk_ids)},
            **{run_id: i for i, run_id in enumerate(self.api_ids)},
        }

    def normalise(self, state: State) -> list[tuple[str, RecordedRun]]:
        """Run ids as positions in the history; start times dropped (the API's are now)."""
        return sorted(
            (
                (part, replace(run, run_id=str(self.index[run.run_id]), started=0))
                for part, runs in (("head", state.heads), ("run", state.by_fingerprint))
                for run in runs
            ),
            key=lambda item: (item[0], int(item[1].run_id)),
        )

    def ids_to_positions(self, text: str) -> str:
        return re.sub(r"\b[0-9a-f]{32}\b", lambda m: f"#{self.index.get(m.group(0), '?')}", text)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return Written(tmp_path_factory.mktemp("store-fixture"))


def test_the_history_covers_every_situation(written: Written) -> None:
    statuses = [None if r.outcome is None else r.outcome.status for r in written.runs]
    assert statuses.count(None) >= 1 and statuses.count("failed") >= 2
    assert sum(r.run.kind == "unit" for r in written.runs) == PARAMS.unit_runs
    summary = make_plan(written.evaluations, written.bulk.read(written.fingerprints)).summary
    assert summary.run >= 1 and summary.retry >= 1 and summary.noop >= 1


def test_both_writers_read_back_the_same(written: Written) -> None:
    bulk = written.bulk.read(written.fingerprints)
    api = written.api.read(written.fingerprints)
    assert len(bulk.heads) == len(written.evaluations) * 6  # 5 units and the evaluation
    assert written.normalise(bulk) == written.normalise(api)


def test_both_writers_plan_the_same(written: Written) -> None:
    current = sorted({f for e in written.evaluations for f in _unit_fps(e)})
    plans = [
        make_plan(written.evaluations, store.read(current)) for store in (written.bulk, written.api)
    ]
    bulk, api = (
        written.ids_to_positions(plan_json(p.model_copy(update={"state_token": ""}))) for p in plans
    )
    assert bulk == api


def test_both_writers_leave_the_same_rows(written: Written) -> None:
    bulk, api = rows(written, written.bulk_db), rows(written, written.api_db)
    assert bulk.keys() == api.keys()
    for table in bulk:
        assert bulk[table] == api[table], table


def test_both_writers_leave_the_same_unit_inputs(written: Written) -> None:
    """Datasets and inputs carry ids MLflow draws at random: compared by what they join."""
    query = """
        SELECT i.destination_id, d.experiment_id, d.name, d.digest, d.dataset_source_type,
               d.dataset_source, t.name, t.value
        FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
        JOIN input_tags t ON t.input_uuid = i.input_uuid
        WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN'"""
    found = []
    for db in (written.bulk_db, written.api_db):
        with sqlite3.connect(db) as conn:
            found.append(sorted((written.index[r[0]], *r[1:]) for r in conn.execute(query)))
    bulk, api = found
    units = [i for i, r in enumerate(written.runs) if r.run.kind == "unit"]
    assert sorted(row[0] for row in bulk) == sorted(units)  # one unit input per unit run
    assert bulk == api


def test_built_fixtures_are_cached(tmp_path: Path, written: Written) -> None:
    small = replace(PARAMS, unit_runs=60)
    template = tmp_path / f"empty-mlflow-{sf.version('mlflow-skinny')}.db"
    shutil.copy(written.root / "template.db", template)  # skip MLflow's migrations
    first = sf.build(small, cache=tmp_path)
    stamp = (first.root / "fixture.json").stat().st_mtime_ns
    again = sf.build(small, cache=tmp_path)
    assert again.root == first.root and (again.root / "fixture.json").stat().st_mtime_ns == stamp
    assert first.counts["unit_runs"] == 60
    assert sf.build(replace(small, seed=4), cache=tmp_path).root != first.root
    assert json.dumps(first.uri) in (first.repo / "evalhub.yaml").read_text()
    state = MlflowStateStore.open(first.uri, first.artifacts).read([])
    assert len(state.heads) == small.evaluations * 6
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(first.root.name + ".")]
    assert leftovers == []


def _unit_fps(evaluation: Any) -> list[str]:
    from evalhub.core.fingerprint import unit_fingerprint

    return [unit_fingerprint(u) for u in evaluation.units]


# Columns that legitimately differ between the two writers: ids and clocks.
VOLATILE = {"run_uuid", "start_time", "end_time", "timestamp", "creation_time", "last_update_time"}


def rows(written: Written, db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every non-empty table, with run ids replaced by history positions and clocks dropped."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with sqlite3.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [c[1] for c in conn.execute(f"PRAGMA table_info('{table}')")]
            found = []
            for row in conn.execute(f"SELECT * FROM '{table}'"):
                record = dict(zip(columns, row, strict=True))
                run = record.get("run_uuid")
                kept = tuple(
                    (k, written.ids_to_positions(v) if isinstance(v, str) else v)
                    for k, v in sorted(record.items())
                    if k not in VOLATILE
                )
                found.append(((written.index.get(run, -1) if run else -1), *kept))
            if found:
                out[table] = sorted(found, key=repr)
    return out
