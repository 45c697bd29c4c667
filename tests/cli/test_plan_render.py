"""`evalhub plan --render kubernetes DIR`: the manifests of every unit the plan would run, valid
against the real schemas, whatever executor the evaluation names; a unit that could not run on
the cluster is a clear error."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

from tests.conftest import run_cli
from tests.project import make_project

IMAGE = "registry.example/evalhub-runner@sha256:" + "b" * 64


def test_render_writes_valid_manifests_for_the_units_to_run(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    (root / "evalhub.yaml").write_text(
        "specs: [evals]\nexecutors:\n  kubernetes:\n"
        f'    image: "{IMAGE}"\n    api_key_secret: model-keys\n    queue: team-a\n'
    )
    result = run_cli("plan", "--render", "kubernetes", "manifests", cwd=root)
    assert result.code == 0, result.stderr
    assert "Wrote the manifests of 2 unit(s)" in result.stderr
    files = sorted((root / "manifests").glob("*.yaml"))
    assert len(files) == 2
    units = set()
    for path in files:
        job, config_map = yaml.safe_load_all(path.read_text())
        for doc in (job, config_map):
            kubernetes_validate.validate(doc, "1.37.0", strict=True)
        assert job["kind"] == "Job" and config_map["kind"] == "ConfigMap"
        assert path.name == job["metadata"]["name"][: -len("-1")] + ".yaml"
        assert job["spec"]["suspend"] is True
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        units.add(job["metadata"]["annotations"]["evalhub.dev/unit"])
    assert units == {"quality/returns-qa", "quality/refusals"}


def test_render_refuses_an_unpinned_image_clearly(tmp_path: Path) -> None:
    root = make_project(tmp_path, "http://127.0.0.1:9/v1")
    (root / "evalhub.yaml").write_text(
        "specs: [evals]\nexecutors:\n  kubernetes:\n"
        "    image: registry.example/runner:latest\n    api_key_secret: model-keys\n"
    )
    result = run_cli("plan", "--render", "kubernetes", "manifests", cwd=root)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "is not pinned by digest" in result.stderr
