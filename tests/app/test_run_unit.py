"""`evalhub run-unit` with the built-in evaluator, against a scripted endpoint: results, retries,
failures with clear reasons, bring-your-own adapters, and the API key never written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from evalhub.core.resolve import resolve
from tests.conftest import run_cli
from tests.fake_openai import Script, fake_openai
from tests.specs import COLLECTION, EVALUATION, MODEL, PROVIDER, edit, validate

ROWS = [
    {"id": "a", "question": "How long to return?", "context": "60 days.", "expected": ["60 days"]},
    {
        "id": "b",
        "question": "Fee?",
        "context": "No fee.",
        "expected": "no fee",
        "forbidden": ["15%"],
    },
]


def make_job(
    tmp_path: Path, url: str, *, model: str = MODEL, provider: str = PROVIDER, key: str = "faq"
) -> Path:
    root = tmp_path / "evals"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result = validate(
        model.replace("http://127.0.0.1:8000/v1", url), provider, COLLECTION, EVALUATION
    )
    assert result.ok, result.diagnostics
    (evaluation,) = resolve(result.specs, {"data/faq.jsonl": "sha256:" + "0" * 64})
    unit = next(u for u in evaluation.units if u.key == key)
    job = JobSpec(
        evaluation=evaluation.name,
        unit=f"{evaluation.name}/{unit.key}",
        fingerprint="f" * 64,
        spec=unit,
        spec_root=str(root),
        project_root=str(tmp_path),
        output_dir=str(tmp_path / "out"),
        timeout_seconds=30,
        concurrency=2,
    )
    path = tmp_path / "unit.json"
    path.write_text(job.model_dump_json())
    return path


def run(tmp_path: Path, job: Path) -> JobResults:
    out = tmp_path / "result.json"
    result = run_cli("run-unit", str(job), "--out", str(out))
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return JobResults.model_validate_json(out.read_text())


def test_scores_rows_and_writes_samples(tmp_path: Path) -> None:
    answers = {"How long to return?": "Sixty... I mean 60 days.", "Fee?": "No fee, not even 15%."}
    script = Script(answer=lambda prompt: next(a for q, a in answers.items() if q in prompt))
    with fake_openai(script) as (url, script):
        result = run(tmp_path, make_job(tmp_path, url))
    assert result.status == "succeeded", result.error
    # scorer exact_match (the collection overrides the catalogue's `contains`); the primary
    # metric `contains` is a scorer too, so both are computed
    assert result.metrics["exact_match"] == 0.0
    assert result.metrics["contains"] == 0.5  # the second answer cites the forbidden "15%"
    assert result.primary_metric == "contains" and result.score == 0.5
    samples = [
        json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()
    ]
    assert [s["id"] for s in samples] == ["a", "b"]
    assert samples[1]["forbidden_cited"] == ["15%"]
    assert script.generations == 2
    assert (
        json.loads((tmp_path / "out" / "endpoint.json").read_text())["data"][0]["id"]
        == "fake-model"
    )


def test_primary_metric_missing_is_a_clear_failure(tmp_path: Path) -> None:
    provider = PROVIDER.replace("primary_metric: contains", "primary_metric: bleu")
    with fake_openai() as (url, _):
        result = run(tmp_path, make_job(tmp_path, url, provider=provider))
    assert result.status == "failed"
    assert result.error == (
        "the result has no metric 'bleu' "
        "(reported: exact_match, forbidden_cited, latency_ms_mean, requests)"
    )


def test_limit_and_score(tmp_path: Path) -> None:
    provider = PROVIDER.replace(
        "params: {scorer: contains, limit: 5}", "params: {scorer: contains}"
    )
    collection = COLLECTION.replace("params: {scorer: exact_match}", "params: {limit: 1}")
    (tmp_path / "c.yaml").write_text(collection)
    with fake_openai() as (url, script):
        job = make_job(tmp_path, url, provider=provider)
        spec = JobSpec.model_validate_json(job.read_text())
        unit = spec.spec.model_copy(update={"params": {"scorer": "contains", "limit": 1}})
        job.write_text(spec.model_copy(update={"spec": unit}).model_dump_json())
        result = run(tmp_path, job)
    assert result.status == "succeeded"
    assert result.samples == 1 and script.generations == 1
    assert result.primary_value == 1.0 and result.score == 1.0


def retrying_job(tmp_path: Path, url: str) -> Path:
    job = make_job(tmp_path, url)
    spec = JobSpec.model_validate_json(job.read_text())
    unit = spec.spec.model_copy(
        update={"params": {"scorer": "contains", "limit": 1, "max_retries": 2}}
    )
    job.write_text(spec.model_copy(update={"spec": unit}).model_dump_json())
    return job


@pytest.mark.parametrize("fault", [500, 503, 429, "junk"])
def test_transient_faults_are_retried(tmp_path: Path, fault: int | str) -> None:
    with fake_openai(Script(faults=[fault, fault])) as (url, script):
        result = run(tmp_path, retrying_job(tmp_path, url))
    assert result.status == "succeeded", result.error
    assert script.generations == 3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(500, "HTTP 500"), ("junk", "answered something that is not an OpenAI chat/completions")],
)
def test_persistent_faults_fail_the_unit_with_the_reason(
    tmp_path: Path, fault: int | str, reason: str
) -> None:
    with fake_openai(Script(always=fault)) as (url, script):
        result = run(tmp_path, retrying_job(tmp_path, url))
    assert result.status == "failed"
    assert f"failed after 3 attempts: {reason}" in (result.error or "")
    assert script.generations == 3  # bounded


def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    with fake_openai(Script(always=404)) as (url, script):
        result = run(tmp_path, retrying_job(tmp_path, url))
    assert result.status == "failed" and "HTTP 404" in (result.error or "")
    assert script.generations == 1


def test_endpoint_down_fails_fast_and_clearly(tmp_path: Path) -> None:
    result = run(tmp_path, retrying_job(tmp_path, "http://127.0.0.1:9/v1"))
    assert result.status == "failed"
    assert "cannot connect" in (result.error or "")


def test_api_key_comes_from_the_env_and_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-" + "q" * 32
    model = edit(
        MODEL,
        spec__endpoint={
            "url": "http://x/v1",
            "api": "chat",
            "served_name": "m",
            "api_key_env": "EVALHUB_TEST_KEY",
        },
    )
    with fake_openai() as (url, script):
        job = make_job(tmp_path, url, model=model.replace("http://x/v1", url))
        missing = run(tmp_path, job)
        assert missing.status == "failed"
        assert missing.error == (
            "environment variable EVALHUB_TEST_KEY is not set "
            "(export the model's API key under that name)"
        )
        monkeypatch.setenv("EVALHUB_TEST_KEY", secret)
        result = run(tmp_path, job)
    assert script.headers[-1]["Authorization"] == f"Bearer {secret}"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    assert result.error is None or secret not in result.error


def test_bring_your_own_adapter(tmp_path: Path) -> None:
    (tmp_path / "my_adapter.py").write_text(
        "from evalhub.core.job import JobResults\n"
        "class Echo:\n"
        "    def run_benchmark_job(self, job, callbacks):\n"
        "        return JobResults(fingerprint=job.fingerprint, status='succeeded',\n"
        "            metrics={'contains': 0.25, 'rows': 2.0}, primary_metric='contains',\n"
        "            framework='echo', framework_version='1')\n"
    )
    provider = PROVIDER.replace("adapter: builtin", "adapter: my_adapter:Echo")
    result = run(
        tmp_path, make_job(tmp_path, "http://127.0.0.1:9/v1", provider=provider, key="faq")
    )
    assert result.status == "succeeded" and result.framework == "echo"
    assert result.primary_value == 0.25 and result.score == 0.25


def test_a_unit_failure_keeps_what_the_adapter_left_as_artifacts(tmp_path: Path) -> None:
    (tmp_path / "halfway.py").write_text(
        "from pathlib import Path\n"
        "from evalhub.core.errors import UnitError\n"
        "class Halfway:\n"
        "    def run_benchmark_job(self, job, callbacks):\n"
        "        out = Path(job.output_dir)\n"
        "        (out / 'raw').mkdir(parents=True)\n"
        "        (out / 'framework.log').write_text('row 3: judge output did not parse')\n"
        "        (out / 'raw' / 'samples.jsonl').write_text('{}')\n"
        "        raise UnitError('could not grade any row', 'see framework.log')\n"
    )
    provider = PROVIDER.replace("adapter: builtin", "adapter: halfway:Halfway")
    result = run(tmp_path, make_job(tmp_path, "http://x/v1", provider=provider))
    assert result.status == "failed"
    assert result.error == "could not grade any row (see framework.log)"
    assert result.artifacts == {
        "framework.log": "framework.log",
        "raw/samples.jsonl": "raw/samples.jsonl",
    }


def test_missing_and_crashing_adapters_become_failed_results(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(
        "class Boom:\n"
        "    def run_benchmark_job(self, job, callbacks):\n"
        "        raise RuntimeError('kaput')\n"
    )
    crash = run(
        tmp_path,
        make_job(
            tmp_path,
            "http://x/v1",
            provider=PROVIDER.replace("adapter: builtin", "adapter: boom:Boom"),
        ),
    )
    assert crash.status == "failed"
    assert crash.error == "the boom:Boom adapter crashed: RuntimeError: kaput"
    assert "kaput" in (tmp_path / "out" / "error.log").read_text()
    absent = run(
        tmp_path,
        make_job(
            tmp_path,
            "http://x/v1",
            provider=PROVIDER.replace("adapter: builtin", "adapter: nowhere.mod:X"),
        ),
    )
    assert absent.status == "failed" and "cannot import adapter 'nowhere.mod:X'" in (
        absent.error or ""
    )
    # The spec language admits only known adapters; the loader still refuses anything else.
    with pytest.raises(UnitError, match="adapter 'nosuch' is not available in this evalhub"):
        load_adapter("nosuch")
