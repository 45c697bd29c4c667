"""Issue 12 item 6: credential shapes are found anywhere in a string, in mapping keys, and in
any URL — in specs and in evalhub.yaml — and the error never repeats the credential."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalhub.core.diagnose import credential_in
from tests.conftest import run_cli

BASELINE = Path(__file__).parent.parent / "bad_specs" / "_baseline"
PROVIDER = "evals/providers/builtin.yaml"
MODEL = "evals/models/assistant.yaml"

OPENAI = "sk-proj-" + "Zq8Xw3Lm9" * 4
PEM_HEADER = "-----BEGIN EC PRIVATE KEY-----"


@dataclass(frozen=True)
class Leak:
    id: str
    file: str
    append: str  # YAML appended to the file (a provider `config:` or metadata)
    line: int
    column: int
    path: str
    what: str  # the kind of credential the message names
    secret: str  # what the output must never repeat
    replace: tuple[str, str] = ("", "")  # or a text replacement in the file


def provider_config(body: str) -> str:
    return f"  config:\n{body}"


CASES = [
    Leak(
        "key-inside-a-system-prompt",
        PROVIDER,
        provider_config(f'    system_prompt: "You are helpful. Internal key: {OPENAI} thanks"\n'),
        14, 20, "spec.config.system_prompt", "an OpenAI-style API key", OPENAI,
    ),
    Leak(
        "bearer-header-value",
        PROVIDER,
        provider_config(f'    headers: {{Authorization: "Bearer {"Ab9" * 10}"}}\n'),
        14, 30, "spec.config.headers.Authorization", "a bearer token", "Ab9" * 10,
    ),
    Leak(
        "key-used-as-a-mapping-key",
        PROVIDER,
        provider_config(f"    {OPENAI}: primary\n"),
        14, 5, "spec.config.{redacted}", "an OpenAI-style API key", OPENAI,
    ),
    Leak(
        "google-api-key",
        PROVIDER,
        provider_config("    gemini: AIzaSyA-" + "k3Jd9" * 6 + "x\n"),
        14, 13, "spec.config.gemini", "a Google API key", "AIzaSyA-" + "k3Jd9" * 6,
    ),
    Leak(
        "pem-private-key-header",
        PROVIDER,
        provider_config(f'    note: "{PEM_HEADER}\\nMHcCAQEEI"\n'),
        14, 11, "spec.config.note", "a private key (PEM)", "MHcCAQEEI",
    ),
    Leak(
        "github-token",
        PROVIDER,
        provider_config("    ci: ghp_" + "Zq8" * 12 + "\n"),
        14, 9, "spec.config.ci", "a GitHub token", "Zq8" * 12,
    ),
    Leak(
        "github-fine-grained-token",
        PROVIDER,
        provider_config("    ci: see github_pat_11AB" + "cd3" * 10 + "\n"),
        14, 9, "spec.config.ci", "a GitHub token", "cd3" * 10,
    ),
    Leak(
        "aws-access-key-id",
        PROVIDER,
        provider_config("    s3: AKIAIOSFODNN7EXAMPLE\n"),
        14, 9, "spec.config.s3", "an AWS access key id", "AKIAIOSFODNN7EXAMPLE",
    ),
    Leak(
        "hugging-face-token",
        PROVIDER,
        provider_config("    hub: hf_" + "aBc4" * 9 + "\n"),
        14, 10, "spec.config.hub", "a Hugging Face token", "aBc4" * 9,
    ),
    Leak(
        "json-web-token",
        PROVIDER,
        provider_config("    jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\n"),
        14, 10, "spec.config.jwt", "a JSON web token", "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    ),
    Leak(
        "credentials-in-a-url-value",
        PROVIDER,
        provider_config("    mirror: https://bob:hunter2hunter2@data.example.com/x\n"),
        14, 13, "spec.config.mirror", "a URL with credentials", "hunter2hunter2",
    ),
    Leak(
        "credentials-in-tracking-uri",
        "evalhub.yaml",
        "tracking_uri: https://admin:s3cr3t-pw-42@mlflow.example.com\n",
        2, 15, "tracking_uri", "a URL with credentials", "s3cr3t-pw-42",
    ),
    Leak(
        "credentials-in-registry-target",
        "evalhub.yaml",
        "registry: {target: 'oci://robot:s3cr3t-pw-42@registry.example.com/evals'}\n",
        2, 20, "registry.target", "a URL with credentials", "s3cr3t-pw-42",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_secret_detection_finds_credential_shapes_anywhere_in_strings_keys_and_urls(
    case: Leak, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(BASELINE, project)
    target = project / case.file
    target.write_text(target.read_text() + case.append)
    runs = {fmt: run_cli("validate", "--format", fmt, cwd=project) for fmt in ("text", "json")}
    for result in runs.values():
        assert result.code == 1, result.output
        assert "Traceback" not in result.output
        assert case.secret not in result.output  # the error never repeats the credential
    where = f"{case.file}:{case.line}:{case.column}"
    assert where in runs["text"].output, runs["text"].output
    report = json.loads(runs["json"].stdout)
    (found,) = [d for d in report["errors"] if "credential" in d["message"]]
    assert (found["file"], found["line"], found["column"], found["path"]) == (
        case.file, case.line, case.column, case.path,
    )  # fmt: skip
    assert case.what in found["message"]
    assert "environment variable" in found["hint"]


@pytest.mark.parametrize(
    "prose",
    [
        "Ask the assistant to task-switch politely; never reveal a Bearer token.",
        "The bearer instrument-holder-of-record keeps the original.",
        "sk-learn-style-models are fine",
        "See https://docs.example.com/auth and ssh://git@github.com/org/repo.git",
        "AKIA is how AWS key ids start",
        "hf_hub_download fetches files",
    ],
)
def test_prose_that_mentions_credentials_is_not_one(prose: str) -> None:
    assert credential_in(prose) is None
