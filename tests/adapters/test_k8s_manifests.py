"""deploy/kubernetes: every built-in Kubernetes object validates against the real schemas, and
the Role grants exactly what the executor calls (the fake API server enforces the same file)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSIONS = ["1.30.0", "1.37.0"]


def documents() -> list[tuple[str, dict[str, object]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize(("where", "doc"), documents(), ids=[w for w, _ in documents()])
def test_every_manifest_validates(where: str, doc: dict[str, object]) -> None:
    if str(doc["apiVersion"]).startswith("kueue.x-k8s.io/"):
        # Kueue's kinds are CRDs, outside Kubernetes' own OpenAPI: checked for shape only.
        assert doc["kind"] in {
            "ResourceFlavor",
            "ClusterQueue",
            "LocalQueue",
            "WorkloadPriorityClass",
        }
        return
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_role_grants_no_more_than_the_executor_uses() -> None:
    (role,) = [d for _, d in documents() if d["kind"] == "Role"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]  # type: ignore[attr-defined]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    source = (
        DEPLOY.parents[1] / "evalhub" / "adapters" / "executors" / "kubernetes.py"
    ).read_text()
    calls = {
        ("batch", "jobs", "create"): "create_namespaced_job",
        ("batch", "jobs", "get"): "read_namespaced_job",
        ("batch", "jobs", "list"): "list_namespaced_job",
        ("batch", "jobs", "watch"): "watch.Watch",
        ("batch", "jobs", "patch"): "patch_namespaced_job",
        ("batch", "jobs", "delete"): "delete_namespaced_job",
        ("", "configmaps", "create"): "create_namespaced_config_map",
        ("", "pods", "list"): "list_namespaced_pod",
        ("", "pods/log", "get"): "read_namespaced_pod_log",
        ("kueue.x-k8s.io", "workloads", "list"): "list_namespaced_custom_object",
    }
    assert granted == set(calls)
    assert all(call in source for call in calls.values())
    assert "secrets" not in {r for _, r, _ in granted}  # evalhub never reads a Secret
