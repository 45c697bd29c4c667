"""The pure pieces behind issue 12 items 1 and 5: which variables a unit's process gets, and the
one redactor every boundary uses."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from evalhub.app.redaction import RedactingStore
from evalhub.core.job import JobSpec
from evalhub.core.project import ProjectConfig, Registry, Signing
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.redact import MASK, Redactor
from evalhub.core.resolve import resolve
from evalhub.core.resolved import ResolvedModel
from evalhub.core.secrets import protected_variables, secret_named, secret_values
from evalhub.core.spec.model import Tokenizer
from evalhub.core.state import State
from evalhub.core.unit_env import OFFLINE, unit_environment
from tests.specs import BASE, unit_job, validate

KEY = "sk-proj-" + "a1B2c3D4" * 5
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTESTTESTTESTTEST\n"
    "hRANCAAQ9iH3zT1kYyPqAXq0b1o9yqJ2r9o2mE7YcJ1Jm0yO8g2Vw2bJb6jH3pQ\n"
    "-----END PRIVATE KEY-----\n"
)


def job_with(
    model_key_env: str, judge_key_env: str | None = None, tokenizer_env: str | None = None
) -> JobSpec:
    """A unit job whose Model (and judge) name these variables."""
    (evaluation,) = resolve(validate(*BASE).specs, {"data/faq.jsonl": "sha256:" + "0" * 64})
    job = unit_job(evaluation, Path("/r/evals"), Path("/r"), key="faq")

    def model(name: str, key: str, tokenizer: str | None) -> ResolvedModel:
        base = job.spec.model
        assert base.endpoint is not None
        return base.model_copy(
            update={
                "name": name,
                "endpoint": base.endpoint.model_copy(update={"api_key_env": key}),
                "tokenizer": Tokenizer(path_env=tokenizer) if tokenizer else None,
            }
        )

    judge = model("judge", judge_key_env, None) if judge_key_env else None
    unit = job.spec.model_copy(
        update={"model": model("assistant", model_key_env, tokenizer_env), "judge": judge}
    )
    return job.model_copy(update={"spec": unit})


@pytest.mark.parametrize(
    "text",
    [
        KEY,
        f"Authorization: Bearer {KEY}",
        f'{{"error": "bad key {KEY}"}}',
        f"https://api.example.com/v1?key={KEY}&x=1",
        json.dumps({"key": PEM}),  # the PEM's newlines as \n
        PEM.splitlines()[1],  # one line of a PEM body, quoted alone
        "Basic " + base64.b64encode(KEY.encode()).decode(),
        f"answered 401: invalid key {KEY[:30]}",  # cut by an error message's length limit
    ],
)
def test_the_redactor_masks_a_secret_in_the_forms_it_travels_in(text: str) -> None:
    masked = Redactor([KEY, PEM]).text(text)
    assert MASK in masked
    assert KEY not in masked and KEY[:20] not in masked
    assert all(line not in masked for line in PEM.splitlines()[1:3])
    assert Redactor([KEY, PEM]).bytes(text.encode()) == masked.encode()


def test_the_redactor_masks_url_encoded_values_and_leaves_other_text_alone() -> None:
    secret = "p@ss word/with+odd=chars!"
    redactor = Redactor([secret])
    assert redactor.text("u=p%40ss%20word%2Fwith%2Bodd%3Dchars%21") == f"u={MASK}"
    assert redactor.text("u=p%40ss+word%2Fwith%2Bodd%3Dchars%21") == f"u={MASK}"
    assert redactor.text("nothing secret here") == "nothing secret here"
    assert Redactor().text(KEY) == KEY and not Redactor()


def test_secret_values_skip_unset_and_trivially_short_values() -> None:
    env = {"A_KEY": KEY, "SHORT_TOKEN": "1", "EMPTY_PASSWORD": ""}
    assert secret_values(env, ["A_KEY", "SHORT_TOKEN", "EMPTY_PASSWORD", "UNSET"]) == {KEY}


def test_the_console_masks_variables_named_like_credentials() -> None:
    env = {
        "SUPPORT_API_KEY": "x",
        "REGISTRY_PASSWORD": "x",
        "EVALHUB_SIGNING_PEM": "x",
        "SUPPORT_ASSISTANT_TOKENIZER": "x",  # a directory, not a credential
        "TOKENIZERS_PARALLELISM": "x",
        "PATH": "x",
    }
    named = secret_named(env)
    assert {"SUPPORT_API_KEY", "REGISTRY_PASSWORD", "EVALHUB_SIGNING_PEM"} <= named
    assert not {"SUPPORT_ASSISTANT_TOKENIZER", "TOKENIZERS_PARALLELISM", "PATH"} & named


def test_a_unit_gets_an_allow_listed_environment() -> None:
    job = job_with("SUPPORT_API_KEY", judge_key_env="JUDGE_API_KEY", tokenizer_env="TOK_DIR")
    config = ProjectConfig(
        signing=Signing(key_env="MY_SIGNING_PEM"),
        registry=Registry(password_env="MY_REGISTRY_SECRET", token_env="MY_REGISTRY_TOKEN"),
    )
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "LC_ALL": "C.UTF-8",
        "HF_HOME": "/cache/hf",
        "HTTPS_PROXY": "http://proxy:3128",
        "HTTP_PROXY": "http://user:secret@proxy:3128",  # a proxy with a password stays out
        "SUPPORT_API_KEY": "k1",
        "JUDGE_API_KEY": "k2",
        "TOK_DIR": "/tok",
        "OTHER_MODEL_API_KEY": "k3",
        "MY_SIGNING_PEM": "pem",
        "MY_REGISTRY_SECRET": "pw",
        "MY_REGISTRY_TOKEN": "tok",
        "MLFLOW_TRACKING_PASSWORD": "pw",
        "MLFLOW_TRACKING_TOKEN": "tok",
        "GITHUB_TOKEN": "ghs",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "RANDOM_SETTING": "x",
    }
    env = unit_environment(parent, job, protected_variables(config))
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "LC_ALL": "C.UTF-8",
        "HF_HOME": "/cache/hf",
        "HTTPS_PROXY": "http://proxy:3128",
        "SUPPORT_API_KEY": "k1",
        "JUDGE_API_KEY": "k2",
        "TOK_DIR": "/tok",
        **OFFLINE,
        "PYTHONUNBUFFERED": "1",
    }


def test_a_spec_cannot_name_the_signing_key_as_its_models_key() -> None:
    """A contributor who can edit specs names the signing key's variable as a Model's
    api_key_env: the unit still does not get it."""
    config = ProjectConfig(signing=Signing(key_env="MY_SIGNING_PEM"))
    job = job_with("MY_SIGNING_PEM")
    parent = {"MY_SIGNING_PEM": "pem", "MLFLOW_TRACKING_PASSWORD": "pw"}
    assert "MY_SIGNING_PEM" not in unit_environment(parent, job, protected_variables(config))
    job = job_with("MLFLOW_TRACKING_PASSWORD")
    assert "MLFLOW_TRACKING_PASSWORD" not in unit_environment(parent, job)


class _Store:
    """Keeps what it is given (only the writes matter here)."""

    uri = "sqlite:///x.db"
    identity = "sqlite:///x.db"

    def __init__(self) -> None:
        self.runs: list[NewRun] = []
        self.outcomes: list[RunOutcome] = []

    def read(self, fingerprints: object) -> State:
        raise NotImplementedError

    def read_alongside(self, work: object) -> State:
        raise NotImplementedError

    def index_runs(self, progress: object = None) -> int:
        raise NotImplementedError

    def start_run(self, run: NewRun) -> str:
        self.runs.append(run)
        return "run-1"

    def finish_run(self, run_id: str, outcome: RunOutcome) -> None:
        self.outcomes.append(outcome)


def test_every_text_written_to_the_state_store_is_redacted() -> None:
    store = _Store()
    redacting = RedactingStore(store, Redactor([KEY]))
    run = NewRun(
        kind="unit", name="e/u", evaluation="e", fingerprint="f" * 64, fingerprint_version=1,
        identity={}, experiment="x", tags={"user": f"tag {KEY}"},
    )  # fmt: skip
    assert redacting.start_run(run) == "run-1"
    redacting.finish_run(
        "run-1",
        RunOutcome(
            status="failed",
            metrics={"m": 1.0},
            params={"p": f"param {KEY}"},
            artifacts={"endpoint.json": json.dumps({"echo": f"Bearer {KEY}"}).encode()},
            error=f"HTTP 401: Bearer {KEY}",
            tags={"t": KEY},
        ),
    )
    (written,) = store.outcomes
    assert store.runs[0].tags["user"] == f"tag {MASK}"
    assert written.params == {"p": f"param {MASK}"} and written.tags == {"t": MASK}
    assert written.error == f"HTTP 401: Bearer {MASK}"
    assert KEY.encode() not in written.artifacts["endpoint.json"]
    assert written.metrics == {"m": 1.0} and written.status == "failed"
