"""Secrets and the units' processes, through a real `evalhub apply` (issue 12, items 1 and 5).

A unit runs third-party code: it gets an allow-listed environment (its own Model's key, never
the signing key, store or registry credentials), and whatever outside text repeats a key (an
endpoint echoing the Authorization header) is masked before it is written or printed. Both
are shown by scanning every byte apply left behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import Result, run_cli
from tests.fake_openai import Script, fake_openai
from tests.project import make_project, recorded_units

MODEL_KEY = "EVALHUB_TEST_API_KEY"
MODEL_KEY_VALUE = "sk-unit-model-" + "m" * 30
OTHER_KEY = "EVALHUB_TEST_OTHER_API_KEY"  # another Model's key
SIGNING = "EVALHUB_TEST_SIGNING_KEY"
REGISTRY_USER, REGISTRY_PASSWORD = "EVALHUB_TEST_REGISTRY_USER", "EVALHUB_TEST_REGISTRY_PASSWORD"

EVALHUB_YAML = f"""specs: [evals]
signing: {{key_env: {SIGNING}}}
registry: {{username_env: {REGISTRY_USER}, password_env: {REGISTRY_PASSWORD}}}
"""

# A custom adapter (a real class in the project, named by `adapter: module:Class`) that shows
# everything it was given: its environment, in files and on both streams.
ENVDUMP = """\
import hashlib, json, os, sys
from pathlib import Path
from evalhub.core.job import JobResults

class EnvDump:
    def run_benchmark_job(self, job, callbacks):
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        (out / "environ.json").write_text(json.dumps(env))
        digests = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in env.items()}
        (out / "digests.json").write_text(json.dumps(digests))
        print(json.dumps(env))
        print(json.dumps(env), file=sys.stderr)
        return JobResults(fingerprint=job.fingerprint, status="succeeded",
            metrics={"dumped": 1.0}, primary_metric="dumped", framework="envdump",
            framework_version="1", error=None,
            artifacts={"environ.json": "environ.json", "digests.json": "digests.json"})
"""

SPECS = """\
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: assistant}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: fake-model, api_key_env: {key}}}
  revision: v1
---
apiVersion: evalhub.dev/v1
kind: Model
metadata: {{name: other}}
spec:
  endpoint: {{url: "{url}", api: chat, served_name: other-model, api_key_env: {other}}}
  revision: v1
---
apiVersion: evalhub.dev/v1
kind: Provider
metadata: {{name: envdump}}
spec:
  adapter: envdump:EnvDump
  benchmarks:
    - {{id: environ, primary_metric: dumped}}
---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {{name: environ}}
spec:
  model: assistant
  benchmarks:
    - {{provider: envdump, benchmark: environ}}
"""


def private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture()
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The apply process's secrets, set in its environment: name -> value."""
    values = {
        SIGNING: private_key_pem(),
        REGISTRY_USER: "registry-user-" + "u" * 16,
        REGISTRY_PASSWORD: "registry-password-" + "p" * 24,
        "MLFLOW_TRACKING_PASSWORD": "mlflow-password-" + "w" * 24,
        "MLFLOW_TRACKING_TOKEN": "mlflow-token-" + "t" * 24,
        "GITHUB_TOKEN": "ghs_" + "g" * 36,
        OTHER_KEY: "sk-other-model-" + "o" * 30,
        MODEL_KEY: MODEL_KEY_VALUE,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def forms(value: str) -> list[bytes]:
    """The value and, for a PEM key, each line of its body: any one of them is a leak."""
    lines = [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
    return [value.encode(), *(line.encode() for line in lines)]


def leaks(root: Path, result: Result, values: list[str]) -> list[str]:
    """Every file under `root` (the project: specs, .evalhub with the MLflow SQLite store, its
    artifacts, the OCI layout, the units' work directories) and both output streams, scanned
    byte by byte for each value."""
    found = []
    streams = {"stdout": result.stdout.encode(), "stderr": result.stderr.encode()}
    files = {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    for where, data in {**streams, **files}.items():
        for value in values:
            if any(form in data for form in forms(value)):
                found.append(f"{where} holds {value[:12]}…")
    return found


def apply(root: Path) -> Result:
    result = run_cli("apply", "--yes", cwd=root, timeout=300)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_signing_key_never_reaches_a_unit_process(tmp_path: Path, secrets: dict[str, str]) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "evalhub.yaml").write_text(EVALHUB_YAML)
    (root / "envdump.py").write_text(ENVDUMP)
    (root / "evals").mkdir()
    with fake_openai() as (url, _):
        specs = SPECS.format(url=url, key=MODEL_KEY, other=OTHER_KEY)
        (root / "evals" / "specs.yaml").write_text(specs)
        result = apply(root)
    assert result.code == 0, result.stdout + result.stderr
    assert "published" in result.stdout + result.stderr  # signed in the apply process

    (unit,) = recorded_units(root).values()
    assert unit.status == "FINISHED" and unit.metrics["dumped"] == 1.0
    seen = json.loads(unit.artifacts["digests.json"].read_text())
    # Its own Model's key reached it (by digest: the value itself is masked in every file)...
    assert seen[MODEL_KEY] == hashlib.sha256(MODEL_KEY_VALUE.encode()).hexdigest()
    assert seen["HF_HUB_OFFLINE"] == hashlib.sha256(b"1").hexdigest()
    # ...and nothing else secret did, under any name.
    withheld = [name for name in secrets if name != MODEL_KEY]
    assert not set(withheld) & set(seen)
    digests = {hashlib.sha256(secrets[name].encode()).hexdigest() for name in withheld}
    assert not digests & set(seen.values())
    # No value of the apply's secrets is anywhere: project, store, artifacts, logs, output.
    assert leaks(root, result, [secrets[name] for name in withheld]) == []


LEAKY = """\
import os, sys, time
from pathlib import Path

class Leaky:
    def run_benchmark_job(self, job, callbacks):
        out = Path(job.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        key = os.environ["EVALHUB_TEST_API_KEY"]
        (out / "debug.log").write_text("calling with Bearer " + key)
        print("Authorization: Bearer " + key, flush=True)
        print("Authorization: Bearer " + key, file=sys.stderr, flush=True)
        time.sleep(60)
"""


def test_a_unit_killed_at_its_time_limit_leaves_no_key_behind(
    tmp_path: Path, secrets: dict[str, str]
) -> None:
    """run-unit masks its files when the adapter returns; a unit killed by its time limit never
    returns, so the executor masks what it left."""
    root = tmp_path / "project"
    (root / "evals").mkdir(parents=True)
    (root / "evalhub.yaml").write_text("specs: [evals]\n")
    (root / "leaky.py").write_text(LEAKY)
    with fake_openai() as (url, _):
        specs = SPECS.format(url=url, key=MODEL_KEY, other=OTHER_KEY)
        specs = specs.replace("envdump:EnvDump", "leaky:Leaky")
        specs += "  execution: {timeout_seconds: 4}\n"
        (root / "evals" / "specs.yaml").write_text(specs)
        result = apply(root)
    assert result.code == 1 and "timed out after 4 s" in result.stdout + result.stderr
    (debug,) = root.glob(".evalhub/runs/*/output/debug.log")
    assert debug.read_text() == "calling with Bearer {redacted}"
    log = next(root.glob(".evalhub/runs/*/run-unit.log")).read_text()
    assert log.count("Authorization: Bearer {redacted}") == 2
    assert leaks(root, result, list(secrets.values())) == []


def test_an_endpoint_echoing_the_key_leaks_it_nowhere(
    tmp_path: Path, secrets: dict[str, str]
) -> None:
    """Item 5: a 401 body repeating the Authorization header, and a /models answer doing the
    same, pass through the redactor before MLflow tags and artifacts, result.json,
    run-unit.log, the unit's own files and the console."""
    script = Script(always=401, echo_headers=True)
    with fake_openai(script) as (url, _):
        root = make_project(tmp_path, url)  # names EVALHUB_TEST_API_KEY as the Model's key
        result = apply(root)
    assert script.headers and script.headers[-1]["Authorization"] == f"Bearer {MODEL_KEY_VALUE}"
    assert result.code == 1  # the units failed, with the endpoint's words in their errors
    units = recorded_units(root)
    errors = [u.tags.get("evalhub.error", "") for u in units.values()]
    assert errors and all("invalid credentials: Bearer {redacted}" in e for e in errors), errors
    shown = " ".join((result.stdout + result.stderr).split())  # the console wraps lines
    assert "invalid credentials: Bearer {redacted}" in shown
    assert leaks(root, result, list(secrets.values())) == []
