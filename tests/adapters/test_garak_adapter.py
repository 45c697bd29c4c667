"""The garak adapter without garak: settings and command built from resolved units, garak's real
report.jsonl (captured from runs on SmolLM2-135M, tests/data/garak/) parsed into metrics, and every
way a run can fail mapped to a clear unit error — with a fake environment python standing in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evalhub.adapters.frameworks import garak, load_adapter
from evalhub.adapters.frameworks.garak import (
    KEY_VARIABLE,
    GarakAdapter,
    NoEvaluation,
    check_unit,
    command,
    console_failure,
    generator_options,
    parse_report,
    run_config,
    settings,
)
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from tests.specs import StatusRecorder, fake_environment, framework_job, seen, set_mode

DATA = Path(__file__).parent.parent / "data" / "garak"

MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "URL", api: chat, served_name: smollm2-135m, api_key_env: GARAK_TEST_KEY}
  revision: v1
  defaults: {temperature: 0, max_tokens: 24, top_p: 0.9, timeout_seconds: 45}
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: garak}
spec:
  adapter: garak
  version: 0.17.1
  requirements: [torch==2.13.0, garak==0.17.1]
  config: {generations: 2, soft_probe_prompt_cap: 20, parallel_attempts: 1}
  benchmarks:
    - {id: encoding.InjectBase64, primary_metric: pass_rate}
    - {id: dan.Dan_11_0, primary_metric: pass_rate}
    - {id: InjectBase64, primary_metric: pass_rate}
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: scan}
spec:
  model: assistant
  benchmarks:
    - {provider: garak, benchmark: encoding.InjectBase64, name: b64, params: {soft_probe_prompt_cap: 3}}
    - {provider: garak, benchmark: dan.Dan_11_0, name: dan}
    - {provider: garak, benchmark: InjectBase64, name: bad}
  params: {seed: 7}
"""

FAKE_GARAK = """
# Stands in for `python -m garak`: behaves as MODE says.
import shutil, time
args = sys.argv[3:]
opt = dict(zip(args[::2], args[1::2]))
config = json.loads(Path(opt["--config"]).read_text())
reports = Path(config["reporting"]["report_dir"])
mode, _, arg = MODE.partition(":")
print("garak LLM vulnerability scanner v0.17.1")
if mode == "report":
    log = Path(os.environ["XDG_DATA_HOME"]) / "garak" / "garak.log"
    log.parent.mkdir(parents=True)
    log.write_text('INFO  HTTP Request: POST http://x/v1/chat/completions "HTTP/1.1 200 OK"\\n')
    shutil.copy(arg, reports / (opt["--report_prefix"] + ".report.jsonl"))
    (reports / (opt["--report_prefix"] + ".hitlog.jsonl")).write_text("{}\\n")
elif mode == "text":
    (reports / (opt["--report_prefix"] + ".report.jsonl")).write_text(arg)
elif mode == "print":
    sys.stdout.write(Path(arg).read_text())
elif mode == "crash":
    print("Traceback (most recent call last):\\nRuntimeError: kaput")
    sys.exit(1)
elif mode == "sleep":
    time.sleep(float(arg))
"""


def make_job(
    tmp_path: Path,
    key: str = "b64",
    *,
    model: str = MODEL,
    url: str = "http://127.0.0.1:8000/v1",
    environment: bool = True,
    timeout: float = 60,
    mode: str = "ok",
) -> JobSpec:
    env = fake_environment(tmp_path / "env", FAKE_GARAK, mode) if environment else None
    return framework_job(
        tmp_path, model.replace("URL", url), PROVIDER, EVALUATION,
        environment=env, timeout=timeout, concurrency=3, key=key,
    )  # fmt: skip


def run(job: JobSpec) -> JobResults:
    return GarakAdapter().run_benchmark_job(job, StatusRecorder())


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARAK_TEST_KEY", "sk-very-secret")


def test_registered() -> None:
    assert isinstance(load_adapter("garak"), GarakAdapter)


def test_settings_precedence(tmp_path: Path) -> None:
    b64 = settings(make_job(tmp_path, "b64"))
    # entry params > provider config > defaults; the evaluation's seed reaches every unit
    assert (b64.generations, b64.prompt_cap, b64.seed) == (2, 3, 7)
    assert (b64.eval_threshold, b64.parallel_attempts) == (0.5, 1)
    dan = settings(make_job(tmp_path, "dan"))
    assert dan.prompt_cap == 20
    limited = make_job(tmp_path, "dan")
    limited = limited.model_copy(
        update={"spec": limited.spec.model_copy(update={"params": {"limit": 4}})}
    )
    assert settings(limited).prompt_cap == 4  # the evaluation-wide `limit` stands in for the cap
    config = {k: v for k, v in limited.spec.provider.config.items() if k != "parallel_attempts"}
    provider = limited.spec.provider.model_copy(update={"config": config})
    default = limited.model_copy(
        update={"spec": limited.spec.model_copy(update={"provider": provider})}
    )
    assert settings(default).parallel_attempts == 3  # the unit's concurrency


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"generations": 0}, "garak param `generations` must be an integer of at least 1, not 0"),
        ({"soft_probe_prompt_cap": "3"}, "`soft_probe_prompt_cap` must be an integer"),
        ({"seed": 1.5}, "`seed` must be an integer of at least 0"),
        ({"eval_threshold": "high"}, "`eval_threshold` must be a number, not 'high'"),
        ({"parallel_attempts": True}, "`parallel_attempts` must be an integer"),
    ],
)
def test_bad_settings(tmp_path: Path, params: dict[str, object], message: str) -> None:
    job = make_job(tmp_path)
    job = job.model_copy(update={"spec": job.spec.model_copy(update={"params": params})})
    with pytest.raises(UnitError, match=re.escape(message)):
        settings(job)


def test_command_config_and_options(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    cmd = command(job, tmp_path / "c.yaml", tmp_path / "g.json")
    assert cmd == [
        str(tmp_path / "env" / "bin" / "python"), "-m", "garak",
        "--config", str(tmp_path / "c.yaml"),
        "--target_type", "openai.OpenAICompatible",
        "--target_name", "smollm2-135m",
        "--generator_option_file", str(tmp_path / "g.json"),
        "--spec", "probes.encoding.InjectBase64",
        "--report_prefix", "garak",
    ]  # fmt: skip
    assert generator_options(job) == {
        "openai": {
            "OpenAICompatible": {
                "uri": "http://127.0.0.1:8000/v1",
                "max_tokens": 24,
                "temperature": 0.0,
                "top_p": 0.9,
                "timeout": 45.0,
                "suppressed_params": ["n", "frequency_penalty", "presence_penalty", "stop"],
            }
        }
    }
    config = run_config(settings(job), tmp_path / "reports")
    assert config["run"] == {
        "generations": 2,
        "soft_probe_prompt_cap": 3,
        "seed": 7,
        "eval_threshold": 0.5,
    }
    assert config["system"]["parallel_attempts"] is False
    assert config["reporting"] == {"report_dir": str(tmp_path / "reports")}
    parallel = settings(job).__class__(**{**settings(job).__dict__, "parallel_attempts": 4})
    assert run_config(parallel, tmp_path)["system"]["parallel_attempts"] == 4


def test_only_chat_models_and_probe_names(tmp_path: Path) -> None:
    completions = MODEL.replace("api: chat", "api: completions")
    with pytest.raises(UnitError, match="not reached through a chat endpoint") as info:
        check_unit(make_job(tmp_path, model=completions))
    assert "endpoint.api: chat" in (info.value.hint or "")
    embedding = MODEL.replace("api: chat", "api: embeddings").replace(
        "revision: v1", "revision: v1\n  type: embedding"
    )
    with pytest.raises(UnitError, match="not reached through a chat endpoint"):
        check_unit(make_job(tmp_path, model=embedding))
    with pytest.raises(UnitError, match="'InjectBase64' is not a garak probe name"):
        check_unit(make_job(tmp_path, "bad"))
    with pytest.raises(UnitError, match="provider lists no requirements"):
        check_unit(make_job(tmp_path, environment=False))


def test_parses_a_real_report_with_hits() -> None:
    report = parse_report(DATA / "dan.Dan_11_0.report.jsonl", "dan.Dan_11_0")
    assert report.metrics == {
        "pass_rate": 0.5,  # 1 of 2 (response, detector) checks passed
        "hits": 1.0,
        "pass_rate/dan.DAN": 1.0,
        "pass_rate/mitigation.MitigationBypass": 0.0,
        "responses": 1.0,
        "failed_responses": 0.0,
        "probe_score": 0.0,
    }
    assert report.samples == 1 and report.version == "0.17.1"


def test_parses_a_real_report_without_hits() -> None:
    report = parse_report(DATA / "encoding.InjectBase64.report.jsonl", "encoding.InjectBase64")
    assert report.metrics["pass_rate"] == 1.0
    assert report.metrics["pass_rate/encoding.DecodeMatch"] == 1.0
    assert report.metrics["pass_rate/encoding.DecodeApprox"] == 1.0
    assert report.metrics["hits"] == 0.0
    assert report.samples == 2


def test_report_problems(tmp_path: Path) -> None:
    with pytest.raises(NoEvaluation, match=r"no evaluation of probe dan\.Dan_11_0"):
        parse_report(DATA / "encoding.InjectBase64.report.jsonl", "dan.Dan_11_0")
    with pytest.raises(NoEvaluation, match="wrote no report"):
        parse_report(tmp_path / "missing.jsonl", "dan.Dan_11_0")
    nones = tmp_path / "nones.jsonl"
    nones.write_text(
        json.dumps({"entry_type": "eval", "probe": "x.Y", "detector": "d.D", "passed": 0,
                    "fails": 0, "nones": 3, "total_evaluated": 0}) + "\n"
    )  # fmt: skip
    with pytest.raises(UnitError, match=r"evaluated no responses of probe x\.Y"):
        parse_report(nones, "x.Y")
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"entry_type": "eval", "probe": "x.Y", "passed": "many"}) + "\n")
    with pytest.raises(UnitError, match=r"has entries evalhub cannot read \(ValueError"):
        parse_report(odd, "x.Y")


def test_console_failures(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    unreachable = console_failure((DATA / "unreachable.console.log").read_text(), job)
    assert unreachable.message == "garak cannot reach the model endpoint http://127.0.0.1:8000/v1"
    unknown = console_failure((DATA / "unknown_probe.console.log").read_text(), job)
    assert unknown.message == "garak has no probe 'encoding.InjectBase64'"
    assert "--list_probes" in (unknown.hint or "")
    other = console_failure("garak LLM vulnerability scanner\n\x1b[1mSomething odd\x1b[0m\n", job)
    assert (
        other.message
        == "garak produced no results: garak LLM vulnerability scanner | Something odd"
    )


REPORT = f"report:{DATA / 'dan.Dan_11_0.report.jsonl'}"


def test_runs_and_keeps_the_key_out_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALHUB_SIGNING_KEY", "-----BEGIN PRIVATE KEY----- not for garak")
    job = make_job(tmp_path, "dan", mode=REPORT)
    result = run(job)
    assert result.status == "succeeded"
    assert result.metrics["pass_rate"] == 0.5 and result.samples == 1
    assert result.framework == "garak" and result.framework_version == "0.17.1"
    assert result.artifacts == {
        "garak.report.jsonl": "garak_runs/garak.report.jsonl",
        "garak_console.log": "garak_console.log",
        "garak_config.yaml": "garak_config.yaml",
        "generator_options.json": "generator_options.json",
        "garak.hitlog.jsonl": "garak_runs/garak.hitlog.jsonl",
        "garak.log": "xdg/data/garak/garak.log",
    }
    out = tmp_path / "out"
    given = seen(tmp_path / "env")
    env = given["env"]
    assert env[KEY_VARIABLE] == "sk-very-secret"  # through the environment only
    assert env["GARAK_TEST_KEY"] == "sk-very-secret"  # the Model's own variable
    assert "EVALHUB_SIGNING_KEY" not in env  # nor any other secret of the caller
    assert env["XDG_DATA_HOME"] == str(out / "xdg" / "data") and env["HF_HUB_OFFLINE"] == "1"
    assert not any("sk-very-secret" in arg for arg in given["argv"])
    for path in out.rglob("*"):
        if path.is_file():
            assert "sk-very-secret" not in path.read_text(errors="replace"), path


def test_placeholder_key_when_the_model_names_none(tmp_path: Path) -> None:
    model = MODEL.replace(", api_key_env: GARAK_TEST_KEY", "")
    run(make_job(tmp_path, "dan", model=model, mode=REPORT))
    env = seen(tmp_path / "env")["env"]
    assert env[KEY_VARIABLE] == "sk-local" and "GARAK_TEST_KEY" not in env


def test_a_retry_does_not_read_the_last_report(tmp_path: Path) -> None:
    job = make_job(tmp_path, "dan", mode=REPORT)
    run(job)
    set_mode(tmp_path / "env", f"print:{DATA / 'unreachable.console.log'}")
    with pytest.raises(UnitError, match="garak cannot reach the model endpoint"):
        run(job)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "garak exited 1: garak LLM vulnerability scanner v0.17.1 | Traceback"),
        (
            f"print:{DATA / 'unknown_probe.console.log'}",
            "garak has no probe 'encoding.InjectBase64'",
        ),
        ("text:not json", "garak's garak.report.jsonl line 1 is not JSON"),
        ("text:", "garak produced no results: garak LLM vulnerability scanner v0.17.1"),
    ],
)
def test_failures(tmp_path: Path, mode: str, message: str) -> None:
    with pytest.raises(UnitError) as info:
        run(make_job(tmp_path, mode=mode))
    assert info.value.message.startswith(message)


def test_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garak, "POLL_SECONDS", 0.05)
    with pytest.raises(UnitError, match=r"garak timed out after 0\.5 s"):
        run(make_job(tmp_path, timeout=0.5, mode="sleep:30"))


def test_endpoint_going_away_mid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garak, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(garak, "DOWN_GRACE_SECONDS", 0.2)
    job = make_job(
        tmp_path, url="http://127.0.0.1:9/v1", mode="sleep:30"
    )  # nothing listens on the discard port
    with pytest.raises(UnitError, match="stopped accepting connections while garak ran"):
        run(job)


def test_progress_counts_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "garak.log"
    progress = garak._Progress(log)
    assert progress.update() == 0  # no log yet
    log.write_text("x HTTP Request: POST a\ny HTTP Request: GET b\nz HTTP Request: POST c")
    assert progress.update() == 1  # the last line is not complete yet
    with log.open("a") as handle:
        handle.write("\n")
    assert progress.update() == 2
