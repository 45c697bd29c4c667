"""`evalhub store index`: runs an older evalhub recorded get their unit input, once."""

from __future__ import annotations

import json
from pathlib import Path

from evalhub.adapters.mlflow import boundary, values
from evalhub.core import records
from tests.adapters.test_mlflow_store import new_run
from tests.conftest import run_cli
from tests.project import make_project


def test_store_index_logs_the_unit_input_of_older_runs_once(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo", "http://127.0.0.1:9/v1")
    boundary.import_mlflow()
    from mlflow import MlflowClient

    (root / ".evalhub").mkdir()
    old = new_run("quality/faq", "c" * 64)
    tags = {k: v for k, v in values.tags(old.all_tags()).items() if k != records.LOOKUP}
    with boundary.quiet():
        client = MlflowClient(f"sqlite:///{root / '.evalhub' / 'mlflow.db'}")
        experiment = client.create_experiment(old.experiment)
        legacy = client.create_run(experiment, tags=tags).info.run_id
        client.set_terminated(legacy, "FINISHED")
        other_tool = client.create_run(experiment, tags={"team": "else"}).info.run_id

    first = run_cli("store", "index", cwd=root)
    assert first.code == 0, first.stderr
    assert "1 runs indexed" in first.stderr and "sqlite:///.evalhub/mlflow.db" in first.stderr
    with boundary.quiet():
        run = client.get_run(legacy)
        others = client.get_run(other_tool).inputs.dataset_inputs
    assert run.data.tags[records.LOOKUP] == records.LOOKUP_UNIT_INPUT
    (unit,) = run.inputs.dataset_inputs
    assert (unit.dataset.name, unit.dataset.digest) == (records.UNIT_INPUT, "c" * 32)
    assert json.loads(unit.dataset.source) == {"fingerprint": "c" * 64}
    assert others == []  # not evalhub's

    again = run_cli("store", "index", cwd=root)
    assert again.code == 0 and "0 runs indexed" in again.stderr
    with boundary.quiet():
        assert len(client.get_run(legacy).inputs.dataset_inputs) == 1


def test_store_index_without_a_store_changes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo", "http://127.0.0.1:9/v1")
    result = run_cli("store", "index", cwd=root)
    assert result.code == 0 and "0 runs indexed" in result.stderr
    assert not (root / ".evalhub" / "mlflow.db").exists()
