"""Records an MLflow user expects, read back with MLflow's own client: MLflow's source and
user tags, the datasets a unit read as run inputs (name, digest, source), and an evaluation
run that names the unit runs it scored — also a rescore's, whose units an earlier apply ran."""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import pytest

from tests.app.test_gitops import environment  # noqa: F401 (autouse)
from tests.app.test_ledger import git, init_repo
from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import answer, make_project, recorded_units


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALHUB_SIGNING_KEY", raising=False)


def evaluation_runs(root: Path) -> list[dict[str, str]]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / '.evalhub' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.`evalhub.kind` = 'evaluation'")
    return [dict(r.data.tags) for r in sorted(runs, key=lambda r: r.info.start_time)]


# MLflow's own client (reading run inputs) uses a loader SQLAlchemy 2.1 deprecates.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_mlflow_tags_inputs_and_unit_run_links(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        commit = init_repo(root)
        assert run_cli("apply", "--yes", cwd=root, timeout=300).code == 0
        collections = root / "evals" / "collections.yaml"
        collections.write_text(collections.read_text().replace("weight: 2", "weight: 3"))
        git(root, "commit", "-qam", "reweigh")
        calls = script.generations
        assert run_cli("apply", "--yes", cwd=root, timeout=300).code == 0
        assert script.generations == calls  # a rescore

    client = MlflowClient(f"sqlite:///{root / '.evalhub' / 'mlflow.db'}")
    units = recorded_units(root)
    qa = units["quality/returns-qa"]
    assert qa.tags["mlflow.source.git.commit"] == commit
    assert qa.tags["mlflow.source.name"] == "evals/evaluations.yaml"
    assert qa.tags["mlflow.user"] == getpass.getuser()
    run_ids = {
        name: client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            f"tags.`evalhub.name` = '{name}'",
        )[0].info.run_id
        for name in units
    }
    inputs = client.get_run(run_ids["quality/returns-qa"]).inputs.dataset_inputs
    unit, dataset = sorted(inputs, key=lambda i: i.dataset.name != "evalhub.unit")
    # The unit input: how a tracking server finds the runs of many fingerprints at once.
    fingerprint = qa.tags["evalhub.fingerprint"]
    assert (unit.dataset.name, unit.dataset.digest) == ("evalhub.unit", fingerprint[:32])
    assert json.loads(unit.dataset.source) == {"fingerprint": fingerprint}
    assert [t.value for t in unit.tags if t.key == "mlflow.data.context"] == ["unit"]
    data = (root / "evals" / "data" / "qa.jsonl").read_bytes()
    assert dataset.dataset.name == "returns-qa"
    assert dataset.dataset.digest == hashlib.sha256(data).hexdigest()[:16]
    source = json.loads(dataset.dataset.source)
    assert source == {"uri": "evals/data/qa.jsonl", "sha256": hashlib.sha256(data).hexdigest()}
    assert [t.value for t in dataset.tags if t.key == "mlflow.data.context"] == ["evaluation"]

    create, rescore = evaluation_runs(root)
    assert (create["evalhub.action"], rescore["evalhub.action"]) == ("create", "rescore")
    for tags in (create, rescore):  # the rescore names the units the first apply ran
        assert tags["evalhub.unit_run.returns-qa"] == run_ids["quality/returns-qa"]
        assert tags["evalhub.unit_run.refusals"] == run_ids["quality/refusals"]
        assert run_ids["quality/refusals"] in tags["mlflow.note.content"]
    assert rescore["mlflow.note.content"].startswith("**evalhub rescore**")
