"""`evalhub evidence` and `evalhub report` with results in a real OCI registry (Debian's
docker-registry, started per test): the archive carries the registry's bytes (digests
unchanged) and verifies without evalhub; the report verifies against the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_evidence import extract, packed, verify_script
from tests.app.test_gitops import applied, cli, git, ledger, new_repo
from tests.app.test_gitops import endpoint as endpoint  # a fixture
from tests.app.test_gitops import environment as environment  # a fixture
from tests.registry import Registry, running_registry

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "registry") as running:
        yield running


def test_evidence_from_a_registry_verifies_without_evalhub(
    tmp_path: Path, endpoint: Any, registry: Registry
) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    with (root / "evalhub.yaml").open("a") as config:
        config.write(f'registry: {{target: "{registry.target()}", insecure: true}}\n')
    git(root, "commit", "-q", "-am", "publish to the registry")
    applied(root)
    result = ledger(root)["publication"]["result"]
    assert result.startswith(registry.target())

    evidence = extract(packed(root, tmp_path / "e.tar.gz", "--policy", "promote"), tmp_path / "x")
    digest = result.rsplit("@", 1)[1]
    manifest = evidence / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")
    assert manifest.read_bytes() == registry.get_manifest(digest)  # the registry's bytes
    verified = verify_script(evidence)
    assert verified.returncode == 0, verified.stdout
    assert "VERIFIED: 0 check(s) failed" in verified.stdout

    shown = cli(root, "report", "--format", "json")
    assert shown.code == 0, shown.output
    trust = json.loads(shown.stdout)["evaluations"][0]["trust"]
    assert trust["verified"] is True and trust["reference"] == result
