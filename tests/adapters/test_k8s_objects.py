"""The Kubernetes objects of a unit: typed client models, valid against the real OpenAPI schema
of two Kubernetes minor versions (strict: no unknown field), with the guarantees of issue 13."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from evalhub.adapters.executors import k8s_objects as k8s
from evalhub.core.job import JobSpec
from evalhub.core.project import KubernetesSettings, ProjectConfig
from evalhub.core.spec.provider import Resources
from tests.specs import MODEL, PROVIDER, edit, framework_job

VERSIONS = ["1.30.0", "1.37.0"]  # the oldest and newest minor versions evalhub is tested on
IMAGE = "registry.example/evalhub-runner@sha256:" + "a" * 64
EVALUATION = """
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: assistant-quality}
spec:
  model: assistant
  benchmarks: [{provider: builtin, benchmark: faq}]
"""


def as_dict(obj: object) -> dict[str, Any]:
    return ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-any-return]


def valid(doc: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.fixture
def job(tmp_path: Path) -> JobSpec:
    model = edit(MODEL, spec__endpoint__api_key_env="ASSISTANT_KEY")
    files = {"data/faq.jsonl": '{"question": "q", "expected": "a"}\n'}
    return framework_job(tmp_path, model, PROVIDER, EVALUATION, files=files, timeout=90.5)


def placement(**changes: Any) -> k8s.UnitPlacement:
    fields: dict[str, Any] = {
        "image": IMAGE,
        "queue": "evalhub-queue",
        "resources": Resources(cpu="500m", memory="1Gi", gpu=1),
        "attempt": 2,
        "files": {"spec/data/faq.jsonl": b'{"question": "q", "expected": "a"}\n'},
    }
    return k8s.UnitPlacement(**(fields | changes))


SETTINGS = KubernetesSettings(
    namespace="evals",
    service_account="evalhub-runner",
    priority_class="nightly",
    api_key_secret="model-keys",
    image_pull_secrets=["regcred"],
    node_selector={"pool": "gpu"},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],  # type: ignore[list-item]
    ttl_seconds_after_finished=600,
)


def test_the_job_validates_and_carries_the_unit_contract(job: JobSpec) -> None:
    doc = as_dict(k8s.job_object(job, placement(), SETTINGS))
    valid(doc)
    spec = doc["spec"]
    assert spec["backoffLimit"] == 0 and spec["completions"] == 1
    assert spec["activeDeadlineSeconds"] == 91  # the unit's timeout, rounded up
    assert spec["ttlSecondsAfterFinished"] == 600
    assert spec["suspend"] is True  # a queue is set: Kueue admits it
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "evalhub-runner"
    assert pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == [
        "evalhub", "run-unit", "in/unit.json", "--out", "out/result.json", "--bundle",
    ]  # fmt: skip
    assert container["workingDir"] == "/evalhub"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
    }


def test_names_are_deterministic_dns_labels(job: JobSpec) -> None:
    first = k8s.job_object(job, placement(), SETTINGS)
    again = k8s.job_object(job, placement(), SETTINGS)
    assert first.metadata and again.metadata
    assert first.metadata.name == again.metadata.name == f"evalhub-{'f' * 16}-2"
    other = k8s.job_object(job, placement(attempt=3), SETTINGS)
    assert other.metadata and other.metadata.name == f"evalhub-{'f' * 16}-3"
    assert len(first.metadata.name) <= 63


def test_labels_name_the_queue_priority_and_unit(job: JobSpec) -> None:
    doc = as_dict(k8s.job_object(job, placement(), SETTINGS))
    labels = doc["metadata"]["labels"]
    assert labels[k8s.QUEUE_LABEL] == "evalhub-queue"
    assert labels[k8s.PRIORITY_LABEL] == "nightly"
    assert labels[k8s.MANAGED_BY] == "evalhub"
    assert labels["app.kubernetes.io/name"] == "evalhub-unit"
    assert labels[k8s.EVALUATION_LABEL] == "assistant-quality"
    assert labels[k8s.UNIT_LABEL] == "faq"
    assert labels[k8s.FINGERPRINT_LABEL] == "f" * 63
    assert doc["metadata"]["annotations"][k8s.FINGERPRINT_ANNOTATION] == "f" * 64
    # The pod carries evalhub's labels (to find it), not Kueue's (Kueue reads the Job's).
    pod_labels = doc["spec"]["template"]["metadata"]["labels"]
    assert k8s.QUEUE_LABEL not in pod_labels and pod_labels[k8s.FINGERPRINT_LABEL] == "f" * 63


def test_without_a_queue_the_job_starts_at_once(job: JobSpec) -> None:
    doc = as_dict(k8s.job_object(job, placement(queue=None), KubernetesSettings()))
    valid(doc)
    assert doc["spec"]["suspend"] is False
    assert k8s.QUEUE_LABEL not in doc["metadata"]["labels"]
    assert k8s.PRIORITY_LABEL not in doc["metadata"]["labels"]


def test_the_pod_is_restricted(job: JobSpec) -> None:
    pod = as_dict(k8s.job_object(job, placement(), SETTINGS))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    # Everything it writes goes to emptyDirs.
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/evalhub/in"]["readOnly"] is True
    assert "emptyDir" in volumes[mounts["/evalhub/out"]["name"]]
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_the_api_key_is_a_secret_reference_never_a_value(job: JobSpec) -> None:
    doc = as_dict(k8s.job_object(job, placement(), SETTINGS))
    env = {e["name"]: e for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASSISTANT_KEY"] == {
        "name": "ASSISTANT_KEY",
        "valueFrom": {
            "secretKeyRef": {"name": "model-keys", "key": "ASSISTANT_KEY", "optional": False}
        },
    }
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    assert all("value" in e for n, e in env.items() if n != "ASSISTANT_KEY")


def test_the_config_map_holds_the_unit_and_its_files_and_is_owned_by_the_job(
    job: JobSpec,
) -> None:
    doc = as_dict(k8s.config_map(job, placement(), "evals", owner_uid="0000-uid"))
    valid(doc)
    assert doc["metadata"]["name"] == f"evalhub-{'f' * 16}-2"
    assert doc["immutable"] is True
    (owner,) = doc["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": doc["metadata"]["name"],
        "uid": "0000-uid",
        "controller": False,
    }
    unit = JobSpec.model_validate_json(doc["data"]["unit.json"])
    assert unit.fingerprint == job.fingerprint and unit.spec == job.spec  # identity unchanged
    assert (unit.spec_root, unit.output_dir, unit.environment) == ("in/spec", "out/output", None)
    (data,) = doc["binaryData"].values()
    assert base64.b64decode(data) == b'{"question": "q", "expected": "a"}\n'
    # The Job mounts each file at its path under the spec root.
    job_doc = as_dict(k8s.job_object(job, placement(), SETTINGS))
    volume = job_doc["spec"]["template"]["spec"]["volumes"][0]["configMap"]
    assert volume["name"] == doc["metadata"]["name"]
    assert {i["path"] for i in volume["items"]} == {"unit.json", "spec/data/faq.jsonl"}
    assert json.dumps(doc).count("sk-") == 0


@pytest.mark.parametrize(
    ("image", "allowed", "problem"),
    [
        (IMAGE, False, None),
        ("registry.example/runner:1.2", False, "is not pinned by digest"),
        ("registry.example/runner:1.2", True, None),
        (None, False, "names no runner image"),
    ],
)
def test_runner_images_must_be_pinned(
    image: str | None, allowed: bool, problem: str | None
) -> None:
    settings = KubernetesSettings(allow_unpinned_images=allowed)
    found = k8s.image_problem(image, settings)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_settings_parse_from_evalhub_yaml_and_reject_bad_names() -> None:
    config = ProjectConfig.model_validate(
        {"executors": {"kubernetes": {"namespace": "evals", "queue": "team-a"}}}
    )
    assert config.executors.kubernetes.queue == "team-a"
    with pytest.raises(ValueError, match="namespace"):
        ProjectConfig.model_validate({"executors": {"kubernetes": {"namespace": "Evals_1"}}})
