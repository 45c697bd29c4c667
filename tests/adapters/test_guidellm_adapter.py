"""The GuideLLM adapter without GuideLLM: the scenario it writes, the report it parses (real
GuideLLM 0.8.1 reports, trimmed, in tests/data/guidellm/) and how failures map to UnitErrors —
with a fake environment whose `python` plays GuideLLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.frameworks.guidellm import (
    API_KEY_VARIABLE,
    GuideLLMAdapter,
    backend_target,
    check_errors,
    command,
    environment,
    parse_report,
    scenario,
)
from evalhub.core.errors import UnitError
from evalhub.core.job import JobSpec
from tests.specs import StatusRecorder, fake_environment, framework_job, gone, seen

DATA = Path(__file__).parent.parent / "data" / "guidellm"

MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: assistant}}
spec:
  type: {type}
  endpoint: {{url: "{url}", api: {api}, served_name: smollm2-135m, api_key_env: GUIDELLM_KEY}}
  revision: v1
  defaults: {{temperature: 0.2, max_tokens: 24, timeout_seconds: 30}}
  {tokenizer}
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: guidellm}
spec:
  adapter: guidellm
  version: 0.8.1
  requirements: ["torch==2.13.0", "guidellm==0.8.1"]
  benchmarks:
    - id: latency
      primary_metric: request_latency_p95_ms
      direction: lower
      scale: {min: 0, max: 5000}
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: perf}}
spec:
  model: assistant
  benchmarks:
    - provider: guidellm
      benchmark: latency
      params: {params}
"""


@pytest.fixture(autouse=True)
def tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tokenizer"
    path.mkdir()
    monkeypatch.setenv("GUIDELLM_TOKENIZER", str(path))
    monkeypatch.setenv("GUIDELLM_KEY", "sk-unit-test-secret")
    return path


def make_job(
    tmp_path: Path,
    params: dict[str, Any] | None = None,
    *,
    api: str = "completions",
    url: str = "http://127.0.0.1:8000/v1",
    model_type: str = "generative",
    tokenizer: bool = True,
    environment: bool = True,
    timeout: float = 60,
) -> JobSpec:
    tok = "tokenizer: {path_env: GUIDELLM_TOKENIZER}" if tokenizer else ""
    model = MODEL.format(type=model_type, url=url, api=api, tokenizer=tok)
    given = {"max_requests": 3} if params is None else params
    evaluation = EVALUATION.format(params=json.dumps(given))
    env = tmp_path / "env" if environment else None
    return framework_job(tmp_path, model, PROVIDER, evaluation, environment=env, timeout=timeout)


def spec_of(job: JobSpec, tokenizer: str = "/tok") -> dict[str, Any]:
    built: dict[str, Any] = scenario(job, tokenizer, Path("/out/benchmarks.json"))["spec"]
    return built


# -- the scenario ---------------------------------------------------------------------------


def test_scenario_for_a_completions_model(tmp_path: Path) -> None:
    params = {
        "profile": "synchronous",
        "max_requests": 3,
        "prompt_tokens": 16,
        "output_tokens": 8,
        "seed": 7,
        "limit": 100,  # evaluation-wide params other frameworks use are ignored
    }
    spec = spec_of(make_job(tmp_path, params))
    assert spec["backend"] == {
        "kind": "openai_http",
        "target": "http://127.0.0.1:8000",
        "api_routes": {
            "/v1/completions": "v1/completions",
            "/v1/chat/completions": "v1/chat/completions",
            "/v1/models": "v1/models",
        },
        "model": "smollm2-135m",
        "request_format": "/v1/completions",
        "validate_backend": False,
        "timeout": 30.0,
        "extras": {"body": {"temperature": 0.2}},
    }
    assert spec["profile"] == {"kind": "synchronous"}
    assert spec["constraints"] == [{"kind": "max_requests", "count": 3}]
    assert spec["data"] == [{"kind": "synthetic_text", "prompt_tokens": 16, "output_tokens": 8}]
    assert spec["tokenizer"] == {"kind": "hf_auto", "model": "/tok"}
    assert spec["outputs"] == [{"kind": "json", "path": "/out/benchmarks.json"}]
    assert spec["seed"] == {"kind": "static", "value": 7}
    assert "api_key" not in json.dumps(spec)


def test_defaults_come_from_the_model(tmp_path: Path) -> None:
    spec = spec_of(make_job(tmp_path, {"max_seconds": 2.5}))
    assert spec["profile"] == {"kind": "synchronous"}
    assert spec["constraints"] == [{"kind": "max_duration", "seconds": 2.5}]
    # output_tokens defaults to the Model's max_tokens
    assert spec["data"] == [{"kind": "synthetic_text", "prompt_tokens": 128, "output_tokens": 24}]
    assert "seed" not in spec


def test_request_format_follows_the_model_api_unless_a_param_says(tmp_path: Path) -> None:
    chat = make_job(tmp_path, api="chat")
    assert spec_of(chat)["backend"]["request_format"] == "/v1/chat/completions"
    forced = make_job(tmp_path, {"max_requests": 3, "request_format": "completions"}, api="chat")
    assert spec_of(forced)["backend"]["request_format"] == "/v1/completions"
    with pytest.raises(UnitError, match="request_format"):
        spec_of(make_job(tmp_path, {"max_requests": 3, "request_format": "/v1/responses"}))


def test_embedding_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match="generative Model"):
        spec_of(make_job(tmp_path, api="embeddings"))


@pytest.mark.parametrize(
    ("url", "target", "completions"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000", "v1/completions"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000", "v1/completions"),
        ("https://gw.example/openai/v1", "https://gw.example/openai", "v1/completions"),
        ("https://gw.example/api", "https://gw.example/api", "completions"),
    ],
)
def test_backend_target_keeps_the_base_url(url: str, target: str, completions: str) -> None:
    got, routes = backend_target(url)
    assert got == target
    assert routes["/v1/completions"] == completions
    assert f"{got}/{routes['/v1/completions']}" == url.rstrip("/") + "/completions"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"profile": "concurrent", "concurrency": 4}, {"kind": "concurrent", "streams": [4]}),
        ({"profile": "throughput"}, {"kind": "throughput", "max_concurrency": None}),
        (
            {"profile": "throughput", "concurrency": 2},
            {"kind": "throughput", "max_concurrency": 2},
        ),
        (
            {"profile": "constant", "rate": 2},
            {"kind": "constant", "rate": [2.0], "max_concurrency": None},
        ),
        (
            {"profile": "poisson", "rate": 0.5, "concurrency": 3},
            {"kind": "poisson", "rate": [0.5], "max_concurrency": 3},
        ),
    ],
)
def test_profiles(tmp_path: Path, params: dict[str, Any], expected: dict[str, Any]) -> None:
    assert spec_of(make_job(tmp_path, {**params, "max_requests": 5}))["profile"] == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"profile": "sweep", "max_requests": 3}, "`profile` must be one of"),
        ({"profile": "concurrent", "max_requests": 3}, "needs the param 'concurrency'"),
        ({"profile": "constant", "max_requests": 3}, "needs the param 'rate'"),
        ({"profile": "synchronous"}, "`max_requests` or `max_seconds`"),
        ({"max_requests": 0}, "`max_requests` must be an integer of at least 1, not 0"),
        ({"max_requests": "ten"}, "`max_requests` must be an integer of at least 1"),
        ({"max_requests": True}, "`max_requests` must be an integer of at least 1"),
        ({"max_requests": 2.5}, "`max_requests` must be an integer of at least 1, not 2.5"),
        ({"max_requests": 3, "max_seconds": 0}, "`max_seconds` must be a positive number"),
        ({"max_requests": 3, "prompt_tokens": -1}, "`prompt_tokens` must be an integer of at"),
        ({"max_requests": 3, "seed": "x"}, "`seed` must be an integer"),
        ({"max_requests": 3, "request_format": ["chat"]}, "`request_format` must be one of"),
    ],
)
def test_bad_params_fail_before_anything_runs(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnitError, match=message):
        spec_of(make_job(tmp_path, params))


@pytest.mark.parametrize("value", [-0.1, 1.5, "some", True])
def test_max_error_rate_lies_in_0_1(tmp_path: Path, value: object) -> None:
    fake_environment(tmp_path / "env", FAKE, "copy")
    job = make_job(tmp_path, {"max_requests": 3, "max_error_rate": value})
    with pytest.raises(UnitError, match=r"`max_error_rate` must be a number in \[0, 1\]"):
        GuideLLMAdapter().run_benchmark_job(job, StatusRecorder())
    assert not (tmp_path / "out" / "benchmarks.json").exists()  # GuideLLM never ran


def test_command_runs_guidellm_in_the_managed_environment(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    cmd = command(job, tmp_path / "scenario.json")
    assert cmd == [
        str(tmp_path / "env" / "bin" / "python"), "-m", "guidellm", "run",
        "--scenario", str(tmp_path / "scenario.json"), "--disable-console-interactive",
    ]  # fmt: skip


def test_environment_is_offline_with_the_key_and_without_callers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUIDELLM__SPEC__PROFILE__KIND", "sweep")
    monkeypatch.setenv("GUIDELLM__LOGGING__CONSOLE_LOG_LEVEL", "DEBUG")
    env = environment(make_job(tmp_path))
    assert env[API_KEY_VARIABLE] == "sk-unit-test-secret"
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    assert "GUIDELLM__SPEC__PROFILE__KIND" not in env
    assert "GUIDELLM__LOGGING__CONSOLE_LOG_LEVEL" not in env


def test_an_unset_key_variable_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GUIDELLM_KEY")
    with pytest.raises(UnitError, match="GUIDELLM_KEY is not set"):
        environment(make_job(tmp_path))


# -- the report -----------------------------------------------------------------------------


def test_parses_a_real_report() -> None:
    report = parse_report(DATA / "benchmarks_synchronous.json")
    raw = json.loads((DATA / "benchmarks_synchronous.json").read_text())
    latency = raw["benchmarks"][0]["metrics"]["request_latency"]["successful"]
    assert report.version == "0.8.1"
    assert report.requests == 3
    metrics = report.metrics
    stats = ("mean", "median", "p95", "p99")
    assert set(metrics) == {
        *(f"{name}_{stat}_ms" for name in ("request_latency", "ttft", "itl", "tpot") for stat in stats),
        *(f"output_tokens_per_second_{stat}" for stat in stats),
        *(f"requests_per_second_{stat}" for stat in stats),
        "requests_successful", "requests_errored", "requests_incomplete", "requests_total",
        "prompt_tokens_mean", "output_tokens_mean",
    }  # fmt: skip
    # request latency is in seconds in GuideLLM's JSON, in milliseconds here
    assert metrics["request_latency_p95_ms"] == pytest.approx(latency["percentiles"]["p95"] * 1000)
    assert metrics["request_latency_mean_ms"] == pytest.approx(latency["mean"] * 1000)
    assert 1000 < metrics["request_latency_median_ms"] < 60_000
    assert 0 < metrics["ttft_mean_ms"] < metrics["request_latency_mean_ms"]
    assert metrics["requests_successful"] == metrics["requests_total"] == 3
    assert metrics["requests_errored"] == 0
    assert metrics["prompt_tokens_mean"] == 16 and metrics["output_tokens_mean"] == 8


def test_a_run_without_a_successful_request_fails_with_the_servers_errors() -> None:
    report = parse_report(DATA / "benchmarks_connection_refused.json")
    assert report.metrics["requests_errored"] == 3
    with pytest.raises(UnitError) as caught:
        check_errors(report, 0.5, "http://127.0.0.1:9/v1", chat=False)
    assert "all 3 GuideLLM requests to http://127.0.0.1:9/v1 failed" in caught.value.message
    assert "ConnectError('All connection attempts failed')" in caught.value.message
    assert "request_format" not in caught.value.hint


def test_empty_chat_answers_point_at_the_request_format() -> None:
    # llama-cpp-python's chat template cannot render GuideLLM's list-form message content
    report = parse_report(DATA / "benchmarks_chat_empty.json")
    with pytest.raises(UnitError) as caught:
        check_errors(report, 0.0, "http://127.0.0.1:8000/v1", chat=True)
    assert "UNUSABLE_BACKEND_RESPONSE" in caught.value.message
    assert "request_format: completions" in caught.value.hint


def test_some_errored_requests_fail_the_unit_beyond_max_error_rate() -> None:
    report = parse_report(DATA / "benchmarks_one_of_two_errored.json")
    assert report.metrics["requests_successful"] == report.metrics["requests_errored"] == 1
    assert report.metrics["request_latency_p95_ms"] > 0
    with pytest.raises(UnitError) as caught:
        check_errors(report, 0.0, "http://127.0.0.1:8000/v1", chat=False)
    assert "1 of 2 GuideLLM requests to http://127.0.0.1:8000/v1 failed" in caught.value.message
    assert "(max_error_rate 0)" in caught.value.message
    assert "max_error_rate" in caught.value.hint
    check_errors(report, 0.5, "http://127.0.0.1:8000/v1", chat=False)  # allowed: no error
    check_errors(parse_report(DATA / "benchmarks_synchronous.json"), 0.0, "u", chat=False)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "wrote no report"),
        ("not json {", "is not JSON"),
        ('{"metadata": {}, "benchmarks": []}', "holds no benchmark"),
        ('{"benchmarks": [{"metrics": {"request_totals": {}}}]}', "not in the expected shape"),
    ],
)
def test_missing_or_broken_reports(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "benchmarks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UnitError, match=message):
        parse_report(path)


def test_a_report_missing_a_metric_is_not_in_the_expected_shape(tmp_path: Path) -> None:
    data = json.loads((DATA / "benchmarks_synchronous.json").read_text())
    del data["benchmarks"][0]["metrics"]["inter_token_latency_ms"]
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UnitError, match="KeyError"):
        parse_report(path)


# -- the adapter, with a fake environment ----------------------------------------------------

FAKE = f"""
import time
scenario = json.load(open(sys.argv[sys.argv.index("--scenario") + 1]))
out = scenario["spec"]["outputs"][0]["path"]
mode, _, report = MODE.partition(":")
if mode == "exit":
    print("Traceback (most recent call last):\\nOSError: tokenizer directory is not a tokenizer")
    sys.exit(1)
if mode == "sleep":  # with a worker process, as GuideLLM's scheduler has
    import subprocess
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(os.path.join(os.path.dirname(out), "worker.pid"), "w") as f:
        f.write(str(worker.pid))
    time.sleep(60)
if mode == "nothing":
    sys.exit(0)
with open(out, "w") as f:
    f.write(open(report or {str(DATA / "benchmarks_synchronous.json")!r}).read()
            if mode == "copy" else "garbage")
print("Benchmarking complete")
"""


def test_the_adapter_runs_guidellm_and_keeps_its_output(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, "copy")
    job = make_job(tmp_path, {"max_requests": 3})
    callbacks = StatusRecorder()
    result = GuideLLMAdapter().run_benchmark_job(job, callbacks)
    assert result.status == "succeeded"
    assert result.framework == "guidellm" and result.framework_version == "0.8.1"
    assert result.samples == 3
    assert result.primary_metric == "request_latency_p95_ms"
    assert result.metrics["request_latency_p95_ms"] > 0
    assert callbacks.updates[0].total == 3
    out = tmp_path / "out"
    assert set(result.artifacts) == {"benchmarks.json", "scenario.json", "guidellm.log"}
    assert all((out / path).is_file() for path in result.artifacts.values())
    # the key went to GuideLLM through its environment only: no file the adapter wrote has it
    env = seen(tmp_path / "env")["env"]
    assert {k: v for k, v in env.items() if k.startswith("GUIDELLM")} == {
        API_KEY_VARIABLE: "sk-unit-test-secret",
        "GUIDELLM_KEY": "sk-unit-test-secret",  # the variable the Model names
    }
    for name in ("scenario.json", "command.json", "guidellm.log", "benchmarks.json"):
        assert "sk-unit-test-secret" not in (out / name).read_text()


def test_the_version_falls_back_to_the_environments_packages(tmp_path: Path) -> None:
    data = json.loads((DATA / "benchmarks_synchronous.json").read_text())
    del data["metadata"]["guidellm_version"]
    report = tmp_path / "versionless.json"
    report.write_text(json.dumps(data))
    fake_environment(tmp_path / "env", FAKE, f"copy:{report}")
    marker = {"format": 1, "requirements": [], "packages": ["torch==2.13.0", "guidellm==0.8.1"]}
    (tmp_path / "env" / ".evalhub-env.json").write_text(json.dumps(marker))
    result = GuideLLMAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())
    assert result.framework_version == "0.8.1"


def test_guidellm_is_registered() -> None:
    assert isinstance(load_adapter("guidellm"), GuideLLMAdapter)


def test_a_failing_guidellm_fails_the_unit_with_its_last_lines(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, "exit")
    with pytest.raises(UnitError) as caught:
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())
    assert "guidellm exited 1" in caught.value.message
    assert "tokenizer directory is not a tokenizer" in caught.value.message


def test_garbage_output_fails_the_unit(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, "garbage")
    with pytest.raises(UnitError, match="is not JSON"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())


def test_all_requests_errored_fails_the_unit(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, f"copy:{DATA / 'benchmarks_connection_refused.json'}")
    with pytest.raises(UnitError, match=r"requests to http://127\.0\.0\.1:8000/v1 failed"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())


def test_max_error_rate_lets_a_few_errors_through(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, f"copy:{DATA / 'benchmarks_one_of_two_errored.json'}")
    with pytest.raises(UnitError, match="1 of 2 GuideLLM requests"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())
    job = make_job(tmp_path, {"max_requests": 2, "max_error_rate": 0.5})
    result = GuideLLMAdapter().run_benchmark_job(job, StatusRecorder())
    assert result.status == "succeeded" and result.metrics["requests_errored"] == 1


def test_a_stale_report_is_never_parsed(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, "nothing")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "benchmarks.json").write_text(
        (DATA / "benchmarks_synchronous.json").read_text()
    )
    with pytest.raises(UnitError, match="wrote no report"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())


def test_a_timeout_fails_the_unit_and_stops_guidellms_workers(tmp_path: Path) -> None:
    fake_environment(tmp_path / "env", FAKE, "sleep")
    with pytest.raises(UnitError, match=r"timed out after 1\.5 s"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path, timeout=1.5), StatusRecorder())
    assert gone(int((tmp_path / "out" / "worker.pid").read_text()))


def test_needs_an_environment_and_a_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match="managed environment"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path, environment=False), StatusRecorder())
    with pytest.raises(UnitError, match="names none"):
        GuideLLMAdapter().run_benchmark_job(make_job(tmp_path, tokenizer=False), StatusRecorder())
