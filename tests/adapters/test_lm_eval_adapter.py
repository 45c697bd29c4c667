"""The lm-eval adapter without lm-eval: the command line built from a resolved unit, the custom
tasks copied with absolute data files, lm-eval's results file parsed into metrics, and its
failures and timeouts — with a fake environment python standing in for `python -m lm_eval`."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalhub.adapters.frameworks import load_adapter
from evalhub.adapters.frameworks.lm_eval import LmEvalAdapter, command, prepare_tasks
from evalhub.core.errors import UnitError
from evalhub.core.job import JobSpec
from tests.specs import StatusRecorder, fake_environment, framework_job, gone, seen, set_mode

MODEL = """
apiVersion: evalhub.dev/v1
kind: Model
metadata: {name: assistant}
spec:
  endpoint: {url: "http://127.0.0.1:9/v1/", api: API, served_name: smollm2-135m, api_key_env: LM_KEY}
  revision: v1
  defaults: {timeout_seconds: 30}
  tokenizer: {path: tok}
"""
PROVIDER = """
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {name: lm-eval}
spec:
  adapter: lm-eval
  requirements: ["lm-eval[api]==0.4.13"]
  config: {num_concurrent: 2}
  benchmarks:
    - {id: gen, primary_metric: exact_match, files: [tasks/gen]}
    - {id: mc, primary_metric: acc, files: [tasks/mc]}
"""
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: harness}
spec:
  model: assistant
  benchmarks:
    - {provider: lm-eval, benchmark: BENCH, params: {limit: 3, num_fewshot: 0}}
  params: {seed: 1}
"""
TASKS = {
    "tasks/gen/gen.yaml": "task: gen\ndataset_path: json\n"
    "dataset_kwargs: {data_files: {test: test.jsonl}}\noutput_type: generate_until\n",
    "tasks/gen/test.jsonl": '{"q": "a"}\n',
    "tasks/mc/mc.yaml": "task: mc\ndataset_path: json\noutput_type: multiple_choice\n",
    "tok/tokenizer.json": "{}",
}
# lm-eval's results file, as 0.4.13 writes it (trimmed)
RESULTS = {
    "results": {
        "gen": {
            "alias": "gen",
            "exact_match,strip": 0.6666666666666666,
            "exact_match_stderr,strip": 0.3333333333333333,
            "exact_match,none": 0.3333333333333333,
            "exact_match_stderr,none": "N/A",
        }
    },
    "n-samples": {"gen": {"original": 5, "effective": 3}},
    "lm_eval_version": "0.4.13",
}
FAKE = f"""
import time
args = sys.argv[3:]
output = Path(args[args.index("--output_path") + 1])
if MODE == "crash":
    print("Traceback (most recent call last):\\nValueError: no task named gen")
    sys.exit(2)
if MODE == "hang":  # with a worker in its process group, as lm-eval's request pool has
    import subprocess
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    Path("worker.pid").write_text(str(worker.pid))
    time.sleep(60)
folder = output / "smollm2-135m"
folder.mkdir(parents=True)
(folder / "results_2026-12-04T10-00-00.json").write_text(json.dumps({RESULTS!r}))
(folder / "samples_gen_2026-12-04T10-00-00.jsonl").write_text("{{}}\\n")
"""


def make_job(
    tmp_path: Path, bench: str = "gen", api: str = "completions", timeout: float = 60
) -> JobSpec:
    env = fake_environment(tmp_path / "env", FAKE)
    return framework_job(
        tmp_path, MODEL.replace("API", api), PROVIDER, EVALUATION.replace("BENCH", bench),
        files=TASKS, digests=dict.fromkeys(["tasks/gen", "tasks/mc"], "sha256:" + "1" * 64),
        environment=env, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_KEY", "sk-lm-eval-secret")


def test_the_command_line(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    include, types = prepare_tasks(job, tmp_path / "copy")
    assert include == [tmp_path / "copy" / "tasks__gen"] and types == {"generate_until"}
    copied = (tmp_path / "copy" / "tasks__gen" / "gen.yaml").read_text()
    assert str(tmp_path / "copy" / "tasks__gen" / "test.jsonl") in copied  # made absolute
    cmd = command(job, include, types, tmp_path / "results")
    model_args = (
        "model=smollm2-135m,base_url=http://127.0.0.1:9/v1/completions,tokenized_requests=False,"
        "num_concurrent=2,max_retries=3,timeout=30,tokenizer_backend=None"
    )
    assert cmd == [
        str(tmp_path / "env" / "bin" / "python"), "-m", "lm_eval",
        "--model", "local-completions", "--model_args", model_args,
        "--tasks", "gen", "--output_path", str(tmp_path / "results"), "--log_samples",
        "--include_path", str(include[0]),
        "--limit", "3", "--num_fewshot", "0", "--seed", "1",
    ]  # fmt: skip


def test_log_likelihood_tasks_take_the_models_tokenizer_and_refuse_chat(tmp_path: Path) -> None:
    job = make_job(tmp_path, "mc")
    include, types = prepare_tasks(job, tmp_path / "copy")
    args = command(job, include, types, tmp_path / "r")[6]
    assert f"tokenizer_backend=huggingface,tokenizer={tmp_path / 'tok'}" in args
    with pytest.raises(UnitError, match="chat endpoints cannot"):
        command(make_job(tmp_path, "mc", api="chat"), include, types, tmp_path / "r")


def test_a_run_parses_lm_evals_results(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    result = LmEvalAdapter().run_benchmark_job(job, StatusRecorder())
    assert result.status == "succeeded"
    assert result.metrics == {
        "exact_match,strip": pytest.approx(2 / 3),
        "exact_match_stderr,strip": pytest.approx(1 / 3),
        "exact_match": pytest.approx(1 / 3),  # the "none" filter keeps the bare name
    }
    assert result.samples == 3 and result.framework_version == "0.4.13"
    assert set(result.artifacts) == {
        "results.json",
        "samples_gen_2026-12-04T10-00-00.jsonl",
        "lm_eval.log",
    }
    env = seen(tmp_path / "env")["env"]
    assert env["OPENAI_API_KEY"] == env["LM_KEY"] == "sk-lm-eval-secret"
    assert env["HF_DATASETS_OFFLINE"] == "1"
    out = Path(job.output_dir)
    assert not [p for p in out.rglob("*") if p.is_file() and b"sk-lm-eval" in p.read_bytes()]


def test_a_failing_lm_eval_fails_the_unit_with_its_last_lines(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    set_mode(tmp_path / "env", "crash")
    with pytest.raises(UnitError) as info:
        LmEvalAdapter().run_benchmark_job(job, StatusRecorder())
    assert info.value.message == (
        "lm_eval exited 2: Traceback (most recent call last): | ValueError: no task named gen"
    )
    assert info.value.hint == "see lm_eval.log"


def test_a_timeout_fails_the_unit_and_stops_lm_evals_workers(tmp_path: Path) -> None:
    job = make_job(tmp_path, timeout=3)  # time for the fake to start its worker
    set_mode(tmp_path / "env", "hang")
    with pytest.raises(UnitError, match=r"lm_eval timed out after 3 s"):
        LmEvalAdapter().run_benchmark_job(job, StatusRecorder())
    assert gone(int((Path(job.output_dir) / "worker.pid").read_text()))


def test_registered_and_needs_an_environment(tmp_path: Path) -> None:
    assert isinstance(load_adapter("lm-eval"), LmEvalAdapter)
    job = make_job(tmp_path).model_copy(update={"environment": None})
    with pytest.raises(UnitError, match="managed environment") as info:
        LmEvalAdapter().run_benchmark_job(job, StatusRecorder())
    assert "lm-eval[api]==0.4.13" in str(info.value.hint)
