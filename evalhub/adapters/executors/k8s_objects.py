"""The Kubernetes objects of one unit, built from the official client's typed models. Pure.

Per unit, attempt N: a Job `evalhub-<fingerprint[:16]>-<N>` and a ConfigMap of the same name
owned by it (garbage-collected with it) holding `unit.json` and the unit's data files. The pod:

    /evalhub            workingDir; unit.json's paths are relative to it
    /evalhub/in         the ConfigMap, read-only: unit.json, spec/<files>, project/<adapter code>
    /evalhub/out        an emptyDir: result.json and output/ (the root filesystem is read-only)
    /tmp                an emptyDir

and runs `evalhub run-unit in/unit.json --out out/result.json --bundle`: the result comes back in
its log (evalhub.adapters.executors.bundle). Names derive from the fingerprint and the attempt,
so two applies of one unit collide on purpose (409: the second re-attaches).

Security: non-root, no privilege escalation, every capability dropped, RuntimeDefault seccomp,
read-only root filesystem, no service account token (a unit never talks to the API server). An
API key reaches the pod only as a secretKeyRef to the Secret named in settings: no object
evalhub creates holds a key value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from kubernetes.client import (
    V1Capabilities,
    V1ConfigMap,
    V1ConfigMapVolumeSource,
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1Job,
    V1JobSpec,
    V1KeyToPath,
    V1LocalObjectReference,
    V1ObjectMeta,
    V1OwnerReference,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from evalhub import __version__
from evalhub.core.job import JobSpec
from evalhub.core.project import KubernetesSettings
from evalhub.core.runner_image import ENVIRONMENT_DIR
from evalhub.core.spec.provider import Resources
from evalhub.core.unit_env import OFFLINE, key_variables

WORKDIR = "/evalhub"
UNIT_FILE = "in/unit.json"
RESULT_FILE = "out/result.json"
RUNNER_UID = 65532  # the distroless "nonroot" user; the runner image runs as it too
CONFIGMAP_LIMIT = 1024 * 1024  # what the API server stores in one object
CONTAINER = "run-unit"

# Label and annotation keys: one place, read and written by the executor and the tests.
MANAGED_BY = "app.kubernetes.io/managed-by"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
EVALUATION_LABEL = "evalhub.dev/evaluation"
UNIT_LABEL = "evalhub.dev/unit"
FINGERPRINT_LABEL = "evalhub.dev/fingerprint"
ATTEMPT_LABEL = "evalhub.dev/attempt"
FINGERPRINT_ANNOTATION = "evalhub.dev/fingerprint"
UNIT_ANNOTATION = "evalhub.dev/unit"
RECORDED_ANNOTATION = "evalhub.dev/recorded"
SELECTOR = f"{MANAGED_BY}=evalhub"

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class UnitPlacement:
    """What the objects of one unit need besides its JobSpec: resolved by the executor."""

    image: str
    queue: str | None
    resources: Resources
    attempt: int = 1
    files: dict[str, bytes] = field(default_factory=dict)  # path under in/ -> content


def job_name(fingerprint: str, attempt: int) -> str:
    """A valid DNS label, the same for the same unit and attempt wherever it is computed."""
    return f"evalhub-{fingerprint[:16]}-{attempt}"


def fingerprint_label(fingerprint: str) -> str:
    return fingerprint[:63]  # a label value holds at most 63 characters; the annotation all


def image_problem(image: str | None, settings: KubernetesSettings) -> str | None:
    """Why `image` cannot run a unit, or None."""
    if image is None:
        return (
            "the provider names no runner image and executors.kubernetes.image is not set; "
            "build it from `evalhub runner-image PROVIDER --format containerfile` and pin it "
            "by digest"
        )
    if not _DIGEST.search(image) and not settings.allow_unpinned_images:
        return (
            f"the runner image {image!r} is not pinned by digest (a tag can move, so the same "
            "identity could run different code); name it as image@sha256:<digest>, or set "
            "executors.kubernetes.allow_unpinned_images"
        )
    return None


def pod_unit(job: JobSpec) -> JobSpec:
    """The unit as the pod reads it: its paths relative to the pod's working directory, and
    the Provider's environment where its runner image holds it (evalhub.core.runner_image, the
    one definition the Dagger executor builds too)."""
    requirements = job.spec.provider.requirements
    return job.model_copy(
        update={
            "spec_root": "in/spec",
            "project_root": "in/project",
            "output_dir": "out/output",
            "environment": ENVIRONMENT_DIR if requirements else None,
        }
    )


def labels(job: JobSpec, attempt: int) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "evalhub-unit",
        "app.kubernetes.io/component": "unit",
        "app.kubernetes.io/part-of": "evalhub",
        "app.kubernetes.io/version": __version__,
        MANAGED_BY: "evalhub",
        EVALUATION_LABEL: _label_value(job.evaluation),
        UNIT_LABEL: _label_value(job.spec.key),
        FINGERPRINT_LABEL: fingerprint_label(job.fingerprint),
        ATTEMPT_LABEL: str(attempt),
    }


def config_map(
    job: JobSpec, placement: UnitPlacement, namespace: str, owner_uid: str
) -> V1ConfigMap:
    """unit.json and the unit's files, immutable, owned by the Job with uid `owner_uid`."""
    name = job_name(job.fingerprint, placement.attempt)
    binary = {_file_key(i): data for i, data in enumerate(placement.files.values())}
    return V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels=labels(job, placement.attempt),
            annotations={FINGERPRINT_ANNOTATION: job.fingerprint},
            owner_references=[
                V1OwnerReference(
                    api_version="batch/v1", kind="Job", name=name, uid=owner_uid, controller=False
                )
            ],
        ),
        immutable=True,
        data={"unit.json": pod_unit(job).model_dump_json(indent=2)},
        binary_data={key: _base64(data) for key, data in binary.items()} or None,
    )


def config_map_size(job: JobSpec, placement: UnitPlacement) -> int:
    """Bytes the ConfigMap's payload takes, to check against CONFIGMAP_LIMIT before creating."""
    unit = len(pod_unit(job).model_dump_json(indent=2).encode())
    return unit + sum(math.ceil(len(d) / 3) * 4 for d in placement.files.values())


def job_object(job: JobSpec, placement: UnitPlacement, settings: KubernetesSettings) -> V1Job:
    name = job_name(job.fingerprint, placement.attempt)
    job_labels = labels(job, placement.attempt)
    if placement.queue:
        job_labels[QUEUE_LABEL] = placement.queue
    if settings.priority_class:
        job_labels[PRIORITY_LABEL] = settings.priority_class
    items = [V1KeyToPath(key="unit.json", path="unit.json")] + [
        V1KeyToPath(key=_file_key(i), path=path) for i, path in enumerate(placement.files)
    ]
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(
            name=name,
            namespace=settings.namespace,
            labels=job_labels,
            annotations={FINGERPRINT_ANNOTATION: job.fingerprint, UNIT_ANNOTATION: job.unit},
        ),
        spec=V1JobSpec(
            backoff_limit=0,
            completions=1,
            parallelism=1,
            active_deadline_seconds=max(1, math.ceil(job.timeout_seconds)),
            ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
            suspend=bool(placement.queue),  # Kueue admits a Job by un-suspending it
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=labels(job, placement.attempt)),
                spec=_pod_spec(job, placement, settings, items),
            ),
        ),
    )


def _pod_spec(
    job: JobSpec, placement: UnitPlacement, settings: KubernetesSettings, items: list[V1KeyToPath]
) -> V1PodSpec:
    name = job_name(job.fingerprint, placement.attempt)
    return V1PodSpec(
        restart_policy="Never",
        service_account_name=settings.service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        image_pull_secrets=[V1LocalObjectReference(name=s) for s in settings.image_pull_secrets]
        or None,
        node_selector=settings.node_selector or None,
        tolerations=[
            V1Toleration(key=t.key, operator=t.operator, value=t.value, effect=t.effect)
            for t in settings.tolerations
        ]
        or None,
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUNNER_UID,
            run_as_group=RUNNER_UID,
            fs_group=RUNNER_UID,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[
            V1Container(
                name=CONTAINER,
                image=placement.image,
                image_pull_policy="IfNotPresent",
                command=["evalhub", "run-unit", UNIT_FILE, "--out", RESULT_FILE, "--bundle"],
                working_dir=WORKDIR,
                env=_env(job, settings),
                resources=_resources(placement.resources, settings),
                security_context=V1SecurityContext(
                    run_as_non_root=True,
                    allow_privilege_escalation=False,
                    privileged=False,
                    read_only_root_filesystem=True,
                    capabilities=V1Capabilities(drop=["ALL"]),
                    seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
                ),
                volume_mounts=[
                    V1VolumeMount(name="unit", mount_path=f"{WORKDIR}/in", read_only=True),
                    V1VolumeMount(name="out", mount_path=f"{WORKDIR}/out"),
                    V1VolumeMount(name="tmp", mount_path="/tmp"),
                ],
            )
        ],
        volumes=[
            V1Volume(
                name="unit",
                config_map=V1ConfigMapVolumeSource(name=name, items=items, optional=False),
            ),
            V1Volume(name="out", empty_dir=V1EmptyDirVolumeSource()),
            V1Volume(name="tmp", empty_dir=V1EmptyDirVolumeSource()),
        ],
    )


def _env(job: JobSpec, settings: KubernetesSettings) -> list[V1EnvVar]:
    """What unit_environment gives a local unit, minus the host's: the offline switches, a
    writable home, and the unit's own API keys as references to the settings' Secret."""
    env = [V1EnvVar(name=k, value=v) for k, v in sorted(OFFLINE.items())]
    env += [
        V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        V1EnvVar(name="HOME", value=f"{WORKDIR}/out/home"),
        V1EnvVar(name="XDG_CACHE_HOME", value=f"{WORKDIR}/out/cache"),
        V1EnvVar(name="TMPDIR", value="/tmp"),
    ]
    for variable in dict.fromkeys(key_variables(job)):
        reference = V1SecretKeySelector(name=settings.api_key_secret, key=variable, optional=False)
        env.append(V1EnvVar(name=variable, value_from=V1EnvVarSource(secret_key_ref=reference)))
    return env


def _resources(resources: Resources, settings: KubernetesSettings) -> V1ResourceRequirements:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for name in ("cpu", "memory"):
        own: str | None = getattr(resources, name)  # the Provider's: both request and limit
        ask, cap = own or getattr(settings.requests, name), own or getattr(settings.limits, name)
        if ask:
            requests[name] = ask
        if cap:
            limits[name] = cap
    if resources.gpu:  # extended resources: requests must equal limits
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(resources.gpu)
    return V1ResourceRequirements(requests=requests or None, limits=limits or None)


def _file_key(index: int) -> str:
    return f"file-{index}"


def _base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _label_value(text: str) -> str:
    value = _LABEL_VALUE.sub("_", text)[:63].strip("_.-")
    return value
