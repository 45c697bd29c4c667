"""The Kubernetes executor: each unit runs as a Job (under Kueue when a queue is set).

For every unit: find a Job of its fingerprint left by an earlier apply (re-attach to it), or
create Job then ConfigMap (owned by the Job, see k8s_objects); then watch the Jobs with
resourceVersion resume (410 Gone: list again), show "queued" while suspended, and once a Job is
finished read its pod's log, unpack the result bundle into the unit's local work directory and
report it — the apply process records it through the same recorder as the local executor, so
identity and records do not depend on the executor. A recorded Job is annotated
evalhub.dev/recorded, so a later apply never collects it twice.

Ctrl-C deletes the Jobs this apply created (background propagation: their pods and ConfigMaps
go too) and reports their units interrupted. Every failure of the cluster — refused (403, with
the missing permission), gone, unreachable, a pod that cannot pull its image, runs out of
memory or out of time — becomes a failed unit with its reason; nothing is left unreported.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from evalhub.adapters.executors import bundle
from evalhub.adapters.executors import k8s_objects as k8s
from evalhub.adapters.executors.k8s_api import ClusterError, reason
from evalhub.adapters.redact_files import redact_tree
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate, failed_result
from evalhub.core.project import KubernetesSettings
from evalhub.core.redact import Redactor
from evalhub.core.secrets import WELL_KNOWN, secret_values
from evalhub.core.spec.evaluation import Execution
from evalhub.core.unit_env import key_variables
from evalhub.ports import ExecutionEvents

# A pod that waits for one of these will not start by itself.
STUCK = {
    "ErrImagePull": "cannot pull its image",
    "ImagePullBackOff": "cannot pull its image",
    "InvalidImageName": "names an invalid image",
    "CreateContainerConfigError": "cannot be configured",
}
QUEUED = "queued: waiting for Kueue to admit the Job"
WATCH_ERRORS = 3  # consecutive failed watches before the units still running are given up


@dataclass
class _Tracked:
    job: JobSpec
    name: str
    created: bool  # by this apply (Ctrl-C deletes it); False: re-attached
    phase: str = ""
    suspended: bool = False
    uid: str | None = None


class KubernetesExecutor:
    def __init__(
        self,
        api: client.ApiClient,
        settings: KubernetesSettings,
        root: Path,
        executions: Mapping[str, Execution] | None = None,
        protected: Collection[str] = WELL_KNOWN,
        watch_seconds: int = 5,
    ) -> None:
        """`executions`: each evaluation's `execution` (its queue and resources override the
        settings' and the provider's); `root`: the repository (a unit's files are read from
        its spec root)."""
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.settings = settings
        self.namespace = settings.namespace
        self.root = root
        self.executions = executions or {}
        self.protected = frozenset(protected)
        self.watch_seconds = watch_seconds
        self.host = api.configuration.host

    # -- the port ------------------------------------------------------------------------------

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        results: dict[str, JobResults] = {}
        tracked: dict[str, _Tracked] = {}
        try:
            self._submit(jobs, events, tracked, results)
            self._watch(tracked, events, results)
        except KeyboardInterrupt:
            self._interrupt(tracked, events, results)
            raise
        return results

    # -- submitting ----------------------------------------------------------------------------

    def _submit(
        self,
        jobs: Sequence[JobSpec],
        events: ExecutionEvents,
        tracked: dict[str, _Tracked],
        results: dict[str, JobResults],
    ) -> None:
        try:
            existing = self._existing()
        except ClusterError as exc:
            for job in jobs:
                self._finish(job, failed_result(job, exc.reason), events, results)
            return
        for job in jobs:
            earlier = existing.get(job.fingerprint, [])
            attach = next((j for j in earlier if _attachable(j)), None)
            if attach is not None and attach.metadata and attach.metadata.name:
                name = attach.metadata.name
                tracked[name] = _Tracked(job, name, False, uid=attach.metadata.uid)
                continue
            attempt = 1 + max((_attempt(j) for j in earlier), default=0)
            name = k8s.job_name(job.fingerprint, attempt)
            # Known before it is asked for: Ctrl-C during the request still deletes it.
            tracked[name] = _Tracked(job, name, True)
            try:
                created, tracked[name].uid = self._create(job, attempt)
                tracked[name].created, tracked[name].suspended = created
            except ClusterError as exc:
                del tracked[name]
                self._finish(job, failed_result(job, exc.reason), events, results)
        # Recorded as started once every Job exists, so the store's (slow) first writes
        # overlap the units' work, as with the local executor.
        for item in tracked.values():
            events.started(item.job)
            if item.suspended:
                self._phase(item, QUEUED, events)

    def _existing(self) -> dict[str, list[client.V1Job]]:
        """Jobs of earlier applies, by the full fingerprint they run."""
        try:
            listed = self.batch.list_namespaced_job(self.namespace, label_selector=k8s.SELECTOR)
        except Exception as exc:
            raise reason(exc, self.host, f"list Jobs in namespace {self.namespace!r}") from None
        found: dict[str, list[client.V1Job]] = {}
        for item in listed.items:
            fingerprint = _annotation(item, k8s.FINGERPRINT_ANNOTATION)
            if fingerprint:
                found.setdefault(fingerprint, []).append(item)
        return found

    def _create(self, job: JobSpec, attempt: int) -> tuple[tuple[bool, bool], str | None]:
        """Create the unit's Job and ConfigMap: ((created by us, suspended), the Job's uid). A
        Job of that name already there (a concurrent apply: 409) is re-attached to when it
        runs this unit."""
        placement = self._placement(job, attempt)
        name = k8s.job_name(job.fingerprint, attempt)
        body = k8s.job_object(job, placement, self.settings)
        try:
            created = self.batch.create_namespaced_job(self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise reason(exc, self.host, f"create Job {name}") from None
            return (False, False), self._conflict(job, placement, name)
        except Exception as exc:
            raise reason(exc, self.host, f"create Job {name}") from None
        uid = created.metadata.uid if created.metadata else None
        config_map = k8s.config_map(job, placement, self.namespace, str(uid))
        try:
            self.core.create_namespaced_config_map(self.namespace, config_map)
        except Exception as exc:
            problem = reason(exc, self.host, f"create ConfigMap {name}")
            self._delete(name)  # a Job without its ConfigMap would wait forever
            raise problem from None
        return (True, bool(body.spec and body.spec.suspend)), uid

    def _conflict(self, job: JobSpec, placement: k8s.UnitPlacement, name: str) -> str:
        """Another apply created this unit's Job: re-attach to it, first making sure its
        ConfigMap exists (that apply may have died before creating it; 409 means it did)."""
        try:
            other = self.batch.read_namespaced_job(name, self.namespace)
        except Exception as exc:
            raise reason(exc, self.host, f"read Job {name}") from None
        if _annotation(other, k8s.FINGERPRINT_ANNOTATION) != job.fingerprint:
            raise ClusterError(f"a Job named {name} already exists and runs another unit")
        uid = str(other.metadata.uid if other.metadata else None)
        try:
            self.core.create_namespaced_config_map(
                self.namespace, k8s.config_map(job, placement, self.namespace, uid)
            )
        except ApiException as exc:
            if exc.status != 409:
                raise reason(exc, self.host, f"create ConfigMap {name}") from None
        except Exception as exc:
            raise reason(exc, self.host, f"create ConfigMap {name}") from None
        return uid

    def _placement(self, job: JobSpec, attempt: int) -> k8s.UnitPlacement:
        return placement_for(job, self.settings, self.executions.get(job.evaluation), attempt)

    # -- watching ------------------------------------------------------------------------------

    def _watch(
        self,
        tracked: dict[str, _Tracked],
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> None:
        pending = dict(tracked)
        version: str | None = None
        failures = 0
        while pending:
            try:
                if version is None:  # first, or after 410 Gone: list, then watch from there
                    listed = self.batch.list_namespaced_job(
                        self.namespace, label_selector=k8s.SELECTOR
                    )
                    version = listed.metadata.resource_version if listed.metadata else None
                    seen = {j.metadata.name for j in listed.items if j.metadata}
                    for item in listed.items:
                        self._update(item, pending, events, results)
                    for name in [n for n in pending if n not in seen]:
                        self._gone(pending.pop(name), events, results)
                    if not pending:
                        break
                version = self._stream(version, pending, events, results)
                self._check_pods(pending, events, results)
                failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                    continue
                failures += 1
                if failures >= WATCH_ERRORS:
                    self._give_up(pending, reason(exc, self.host, "watch Jobs"), events, results)
            except ClusterError as exc:
                failures += 1
                if failures >= WATCH_ERRORS:
                    self._give_up(pending, exc, events, results)
            except Exception as exc:  # the connection: unreachable, reset
                failures += 1
                if failures >= WATCH_ERRORS:
                    self._give_up(pending, reason(exc, self.host, "watch Jobs"), events, results)
                else:
                    time.sleep(0.2 * failures)

    def _stream(
        self,
        version: str | None,
        pending: dict[str, _Tracked],
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> str | None:
        """Follow the Jobs from `version` for watch_seconds; the last version seen."""
        watcher = watch.Watch()
        for event in watcher.stream(
            self.batch.list_namespaced_job,
            self.namespace,
            label_selector=k8s.SELECTOR,
            resource_version=version,
            timeout_seconds=self.watch_seconds,
        ):
            item = event["object"]
            if isinstance(item, client.V1Job) and item.metadata:
                version = item.metadata.resource_version
                name = item.metadata.name or ""
                if event["type"] == "DELETED":
                    if name in pending:
                        self._gone(pending.pop(name), events, results)
                else:
                    self._update(item, pending, events, results)
            if not pending:
                watcher.stop()
                break
        return version

    def _update(
        self,
        item: client.V1Job,
        pending: dict[str, _Tracked],
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> None:
        name = item.metadata.name if item.metadata else None
        tracked = pending.get(name or "")
        if tracked is None:
            return
        state = _finished(item)
        if state is not None:
            del pending[tracked.name]
            try:
                self._collect(tracked, item, state, events, results)
            except ClusterError:
                pending[tracked.name] = tracked  # not collected: still pending
                raise
        elif item.spec and item.spec.suspend:
            self._phase(tracked, QUEUED, events)
        elif item.status and item.status.active:
            self._phase(tracked, "running", events)

    def _check_pods(
        self, pending: dict[str, _Tracked], events: ExecutionEvents, results: dict[str, JobResults]
    ) -> None:
        """Pods that will never start by themselves (their Job does not change: only the pod
        knows): fail their unit and delete their Job."""
        for tracked in list(pending.values()):
            if tracked.phase.startswith("queued"):
                self._admission(tracked, events)
                continue
            if not tracked.phase.startswith("running") and tracked.phase != "":
                continue
            pod = self._pod(tracked.name)
            if pod is None or pod.status is None:
                continue
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting if status.state else None
                if waiting is not None and waiting.reason in STUCK:
                    del pending[tracked.name]
                    why = f"the pod {STUCK[waiting.reason]} ({waiting.reason}: {waiting.message})"
                    if waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                        why += f"; image {status.image}"
                        if "@sha256:" not in (status.image or ""):
                            why += " (not pinned by digest)"
                    self._delete(tracked.name)
                    self._finish(tracked.job, failed_result(tracked.job, why), events, results)
                    break
            else:
                for condition in pod.status.conditions or []:
                    if condition.reason == "Unschedulable" and condition.status == "False":
                        message = f"unschedulable: {condition.message}"
                        self._phase(tracked, message, events)

    def _admission(self, tracked: _Tracked, events: ExecutionEvents) -> None:
        """Why Kueue has not admitted the Job yet, from its Workload (best effort: without
        Kueue's API or the permission to list Workloads, the line just says "queued")."""
        if tracked.uid is None:
            return
        try:
            listed = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
                "kueue.x-k8s.io",
                "v1beta1",
                self.namespace,
                "workloads",
                label_selector=f"kueue.x-k8s.io/job-uid={tracked.uid}",
            )
        except Exception:
            return
        for workload in listed.get("items", []) if isinstance(listed, dict) else []:
            for condition in workload.get("status", {}).get("conditions", []):
                if condition.get("type") == "QuotaReserved" and condition.get("status") == "False":
                    why = f"{condition.get('reason')}: {condition.get('message')}"
                    self._phase(tracked, f"{QUEUED} ({why})", events)

    def _phase(self, tracked: _Tracked, message: str, events: ExecutionEvents) -> None:
        if tracked.phase == message:
            return
        tracked.phase = message
        phase = "initializing" if not message.startswith("running") else "running"
        events.progress(tracked.job, JobStatusUpdate(phase=phase, message=message))

    # -- collecting ----------------------------------------------------------------------------

    def _collect(
        self,
        tracked: _Tracked,
        item: client.V1Job,
        state: str,
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> None:
        job = tracked.job
        workdir = Path(job.output_dir).parent
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "result.json").unlink(missing_ok=True)
        pod = self._pod(tracked.name)
        log = self._log(pod) if pod is not None else ""
        redactor = self._redactor(job)
        line = bundle.find(log)
        kept = "\n".join(x for x in log.splitlines() if not x.startswith(bundle.MARKER))
        (workdir / "run-unit.log").write_bytes(redactor.bytes((kept + "\n").encode()))
        result: JobResults | None = None
        problem = None
        if line is not None:
            try:
                bundle.unpack(line, workdir)
                result = JobResults.model_validate_json((workdir / "result.json").read_bytes())
            except (bundle.BundleError, ValueError, OSError) as exc:
                problem = str(exc)
        redact_tree(Path(job.output_dir), redactor)
        if state == "failed":
            why = _failure(item, pod, job)
            if result is None or result.status == "succeeded":
                result = failed_result(job, why, result.artifacts if result else None)
        elif result is None:
            tail = " | ".join(kept.strip().splitlines()[-5:])
            why = problem or "the pod finished without a result bundle in its log"
            result = failed_result(job, why + (f": {tail}" if tail else ""))
        result = result.model_copy(update={"error": redactor.optional(result.error)})
        if result.duration_seconds == 0.0:
            result = result.model_copy(update={"duration_seconds": _duration(item)})
        self._finish(job, result, events, results)
        self._mark_recorded(tracked.name)

    def _pod(self, name: str) -> client.V1Pod | None:
        try:
            pods = self.core.list_namespaced_pod(
                self.namespace, label_selector=f"batch.kubernetes.io/job-name={name}"
            )
        except Exception as exc:
            raise reason(exc, self.host, f"list the pods of Job {name}") from None
        items = sorted(
            pods.items, key=lambda p: p.metadata.creation_timestamp or 0 if p.metadata else 0
        )
        return items[-1] if items else None

    def _log(self, pod: client.V1Pod) -> str:
        name = (pod.metadata.name if pod.metadata else None) or ""
        try:
            return str(
                self.core.read_namespaced_pod_log(name, self.namespace, container=k8s.CONTAINER)
            )
        except ApiException as exc:
            if exc.status in (400, 404):  # never started, or already gone: no log
                return ""
            raise reason(exc, self.host, f"read the log of pod {name}") from None
        except Exception as exc:
            raise reason(exc, self.host, f"read the log of pod {name}") from None

    def _mark_recorded(self, name: str) -> None:
        patch = {"metadata": {"annotations": {k8s.RECORDED_ANNOTATION: "true"}}}
        try:
            self.batch.patch_namespaced_job(
                name, self.namespace, patch, _content_type="application/merge-patch+json"
            )
        except Exception:
            # Recorded already; the Job goes with its TTL. Should the unit run again, a
            # later apply makes a new attempt rather than collecting this one twice only when
            # the mark is there, so try to delete it instead.
            self._delete(name)

    def _gone(
        self, tracked: _Tracked, events: ExecutionEvents, results: dict[str, JobResults]
    ) -> None:
        why = "the Job was deleted before it finished (by someone, by its TTL, or by Kueue)"
        self._finish(tracked.job, failed_result(tracked.job, why), events, results)

    def _give_up(
        self,
        pending: dict[str, _Tracked],
        problem: ClusterError,
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> None:
        """The API server is gone: every unit still running fails with that reason. Its Job
        stays: the next apply re-attaches to it and records its result."""
        for tracked in pending.values():
            why = f"{problem.reason}; the Job {tracked.name} is left to run: the next apply "
            why += "collects its result"
            self._finish(tracked.job, failed_result(tracked.job, why), events, results)
        pending.clear()

    def _interrupt(
        self,
        tracked: dict[str, _Tracked],
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> None:
        """Delete every Job this apply created first (what matters most), then report the
        units interrupted; a recorder that fails now (Ctrl-C may have landed in the middle of
        its work) does not turn the interrupt into a crash: the apply marks its runs."""
        unfinished = [t for t in tracked.values() if t.job.fingerprint not in results]
        for item in unfinished:
            if item.created:
                self._delete(item.name)
        for item in unfinished:
            why = "interrupted (the apply was stopped" + (
                "; its Job was deleted)" if item.created else ")"
            )
            with contextlib.suppress(Exception):
                self._finish(item.job, failed_result(item.job, why), events, results)

    def _delete(self, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Background")
        except Exception:
            return  # already gone, or the server is: its TTL removes it

    def _finish(
        self,
        job: JobSpec,
        result: JobResults,
        events: ExecutionEvents,
        results: dict[str, JobResults],
    ) -> None:
        results[job.fingerprint] = result
        events.finished(job, result)

    def _redactor(self, job: JobSpec) -> Redactor:
        return Redactor(secret_values(os.environ, [*self.protected, *key_variables(job)]))


def placement_for(
    job: JobSpec, settings: KubernetesSettings, execution: Execution | None, attempt: int
) -> k8s.UnitPlacement:
    """Where and how the unit runs: its image (pinned), queue, resources and files; a
    ClusterError when it cannot run on the cluster at all."""
    image = job.spec.provider.image or settings.image
    problem = k8s.image_problem(image, settings)
    if problem or image is None:
        raise ClusterError(problem or "no image")
    if key_variables(job) and not settings.api_key_secret:
        names = ", ".join(key_variables(job))
        raise ClusterError(
            f"the unit's model needs {names}, and executors.kubernetes.api_key_secret names "
            "no Secret holding it (create one with that key and name it there)"
        )
    queue = (execution.queue if execution else None) or settings.queue
    resources = (execution.resources if execution else None) or job.spec.provider.resources
    placement = k8s.UnitPlacement(image, queue, resources, attempt, _files(job))
    size = k8s.config_map_size(job, placement)
    if size > k8s.CONFIGMAP_LIMIT - 16 * 1024:  # leave room for metadata
        raise ClusterError(
            f"the unit's spec and files take {size} bytes, more than a ConfigMap holds "
            f"({k8s.CONFIGMAP_LIMIT}); bake large datasets into the runner image"
        )
    return placement


def _files(job: JobSpec) -> dict[str, bytes]:
    """The unit's files (datasets) and its adapter's code, by their path in the pod."""
    files: dict[str, bytes] = {}
    for relative in sorted(job.spec.files):
        files[f"spec/{relative}"] = (Path(job.spec_root) / relative).read_bytes()
    for relative in sorted(job.spec.provider.code):
        files[f"project/{relative}"] = (Path(job.project_root) / relative).read_bytes()
    return files


def manifests(job: JobSpec, settings: KubernetesSettings, execution: Execution | None) -> str:
    """The Job and ConfigMap of the unit's first attempt as YAML, for review (`evalhub plan
    --render kubernetes`); the ConfigMap's owner uid is the Job's once created."""
    import io

    from ruamel.yaml import YAML

    placement = placement_for(job, settings, execution, 1)
    api = client.ApiClient()
    documents = [
        api.sanitize_for_serialization(k8s.job_object(job, placement, settings)),  # type: ignore[no-untyped-call]
        api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            k8s.config_map(job, placement, settings.namespace, RENDERED_UID)
        ),
    ]
    buffer = io.StringIO()
    buffer.write(f"# {job.unit} ({job.fingerprint}): by `evalhub plan --render kubernetes`\n")
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump_all(documents, buffer)
    return buffer.getvalue()


RENDERED_UID = "00000000-0000-0000-0000-000000000000"  # the Job's uid, known once it exists


def _annotation(item: client.V1Job, key: str) -> str | None:
    annotations = (item.metadata.annotations if item.metadata else None) or {}
    return annotations.get(key)


def _attempt(item: client.V1Job) -> int:
    labels = (item.metadata.labels if item.metadata else None) or {}
    value = labels.get(k8s.ATTEMPT_LABEL, "0")
    return int(value) if value.isdigit() else 0


def _attachable(item: client.V1Job) -> bool:
    """A Job whose result was never recorded and that is not being deleted."""
    meta = item.metadata
    if meta is None or meta.deletion_timestamp is not None:
        return False
    return _annotation(item, k8s.RECORDED_ANNOTATION) != "true"


def _finished(item: client.V1Job) -> str | None:
    for condition in (item.status.conditions if item.status else None) or []:
        if condition.status == "True" and condition.type == "Complete":
            return "succeeded"
        if condition.status == "True" and condition.type == "Failed":
            return "failed"
    return None


def _failure(item: client.V1Job, pod: client.V1Pod | None, job: JobSpec) -> str:
    """Why a Job failed, in the words a user acts on."""
    conditions: Iterable[client.V1JobCondition] = (
        item.status.conditions if item.status else None
    ) or []
    failed = next((c for c in conditions if c.type == "Failed" and c.status == "True"), None)
    if failed is not None and failed.reason == "DeadlineExceeded":
        return f"timed out after {job.timeout_seconds:g} s (the Job's activeDeadlineSeconds)"
    if pod is not None and pod.status is not None:
        if pod.status.reason == "Evicted":
            return f"the pod was evicted: {pod.status.message}"
        for status in pod.status.container_statuses or []:
            ended = status.state.terminated if status.state else None
            if ended is not None and ended.reason == "OOMKilled":
                memory = job.spec.provider.resources.memory
                limit = f" (limit {memory})" if memory else ""
                return f"killed for running out of memory (OOMKilled){limit}"
            if ended is not None and ended.exit_code:
                return f"run-unit exited {ended.exit_code} ({ended.reason or 'Error'})"
    if failed is not None:
        return f"the Job failed: {failed.reason}: {failed.message}"
    return "the Job failed"


def _duration(item: client.V1Job) -> float:
    status = item.status
    if status is None or status.start_time is None or status.completion_time is None:
        return 0.0
    return max(0.0, (status.completion_time - status.start_time).total_seconds())
