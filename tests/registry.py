"""A real OCI registry for tests (Debian's docker-registry 2.8), sample results and projects,
and plain-HTTP access to the registry for tampering with what evalhub pushed.

The registry runs on 127.0.0.1 with a free port and storage in the test's tmp_path; it is
stopped by its PID. A missing binary fails the test, naming the apt package: these tests are
the proof that publishing works against a real registry, so they must never quietly skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalhub.app.project import Project
from evalhub.core.project import ProjectConfig
from evalhub.core.resolve import resolve
from evalhub.core.result import EvaluationResult
from evalhub.core.scoring import score_evaluation
from tests.specs import BASE, EVALUATION, edit, validate

REPOSITORY = "evalhub/results"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: evalhub-tests
{auth}"""
AUTH = """auth:
  htpasswd:
    realm: evalhub-tests
    path: {path}
"""


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: Path
    process: subprocess.Popen[bytes]
    log: Path
    user: str | None = None
    password: str | None = None

    def target(self, repository: str = REPOSITORY) -> str:
        return f"oci://{self.host}/{repository}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    # -- plain HTTP, for tampering and independent checks ------------------------------------

    def client(self) -> httpx.Client:
        auth = (self.user, self.password) if self.user and self.password else None
        return httpx.Client(base_url=f"http://{self.host}/v2/", auth=auth, timeout=10)

    def get_manifest(self, reference: str, repository: str = REPOSITORY) -> bytes | None:
        with self.client() as http:
            response = http.get(
                f"{repository}/manifests/{reference}", headers={"Accept": f"{MANIFEST}, {INDEX}"}
            )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content

    def get_blob(self, digest: str, repository: str = REPOSITORY) -> bytes:
        with self.client() as http:
            response = http.get(f"{repository}/blobs/{digest}")
        response.raise_for_status()
        return response.content

    def put_blob(self, data: bytes, repository: str = REPOSITORY) -> str:
        digest = sha256(data)
        with self.client() as http:
            started = http.post(f"{repository}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["Location"]
            sep = "&" if "?" in location else "?"
            done = http.put(
                f"{location}{sep}digest={digest}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
        assert done.status_code == 201, done.text
        return digest

    def put_manifest(
        self, reference: str, data: bytes, media_type: str = MANIFEST, repository: str = REPOSITORY
    ) -> str:
        with self.client() as http:
            response = http.put(
                f"{repository}/manifests/{reference}",
                content=data,
                headers={"Content-Type": media_type},
            )
        assert response.status_code == 201, response.text
        return response.headers["Docker-Content-Digest"]

    def delete_manifest(self, digest: str, repository: str = REPOSITORY) -> None:
        with self.client() as http:
            response = http.delete(f"{repository}/manifests/{digest}")
        assert response.status_code == 202, response.text

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes on disk (docker-registry 2.x layout)."""
        hex_part = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_part[:2] / hex_part / "data"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not installed: install the Debian package {package} "
            f"(apt-get install -y {package}); these tests need a real registry",
            pytrace=False,
        )
    return found


def start_registry(directory: Path, auth: tuple[str, str] | None = None) -> Registry:
    binary = _binary("docker-registry", "docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    storage = directory / "storage"
    auth_section = ""
    if auth is not None:
        htpasswd = _binary("htpasswd", "apache2-utils")
        line = subprocess.run(
            [htpasswd, "-Bbn", *auth], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        (directory / "htpasswd").write_text(line + "\n")
        auth_section = AUTH.format(path=directory / "htpasswd")
    for _ in range(3):  # another process may take the free port before the registry binds it
        port = free_port()
        config = directory / "config.yml"
        config.write_text(CONFIG.format(root=storage, port=port, auth=auth_section))
        log = directory / "registry.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        registry = Registry(f"127.0.0.1:{port}", storage, process, log, *(auth or (None, None)))
        if _wait_ready(registry):
            return registry
        registry.stop()
    pytest.fail(f"docker-registry did not start:\n{log.read_text()[-2000:]}", pytrace=False)


def _wait_ready(registry: Registry, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            status = httpx.get(f"http://{registry.host}/v2/", timeout=2).status_code
            if status in (200, 401):
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_registry(directory: Path, auth: tuple[str, str] | None = None) -> Iterator[Registry]:
    registry = start_registry(directory, auth)
    try:
        yield registry
    finally:
        registry.stop()


# -- results and projects ---------------------------------------------------------------------


def sample_result(
    name: str = "assistant-quality",
    faq: float = 0.9,
    tone: float = 0.7,
    created: str = "2026-11-26T08:00:00+00:00",
    min_score: float = 0.7,
) -> EvaluationResult:
    """A scored result of tests.specs' evaluation (renamed, and with other gates, on demand:
    both change the fingerprint)."""
    evaluation = edit(EVALUATION, metadata__name=name, spec__gates__min_score=min_score)
    validation = validate(*BASE[:3], evaluation)
    assert validation.ok, validation.diagnostics
    (resolved,) = resolve(validation.specs, {"data/faq.jsonl": "sha256:" + "a" * 64})
    score = score_evaluation(resolved, {"faq": {"contains": faq}, "tone": {"f1": tone}})
    return EvaluationResult.build(
        resolved,
        score,
        created=created,
        evalhub_version="0.1.0",
        spec_commit="0123456789abcdef0123456789abcdef01234567",
        source="https://token:secret@git.example/team/specs.git",
        tracking_uri="http://user:pw@127.0.0.1:5000",
        run_id="run-evaluation",
        unit_runs={"faq": "run-faq", "tone": "run-tone"},
    )


ENVIRONMENT: Mapping[str, Any] = {"python": "3.11", "os": "Debian 12", "packages": ["evalhub"]}


def make_project(root: Path, **settings: Any) -> Project:
    """A project rooted at `root` with these evalhub.yaml settings (written to the file too,
    so the command line sees the same project)."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    config = ProjectConfig.model_validate(settings)
    (root / "evalhub.yaml").write_text(json.dumps(settings) + "\n")
    return Project(root, config, root / "evalhub.yaml")
