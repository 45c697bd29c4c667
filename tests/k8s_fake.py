"""A Kubernetes API server on 127.0.0.1 for tests, with a job controller, Kueue and a kubelet.

The real `kubernetes` client talks to it over HTTP. It implements only what the executor uses
(ConfigMaps, Jobs with list/watch/get/patch/delete, Pods list, pods/log) and is strict where a
real cluster is:
- every object created is checked against the real OpenAPI schema (kubernetes-validate, strict:
  no unknown field) of each Kubernetes version in VERSIONS; an invalid one is refused with 422
  and kept in `invalid`, so a test can assert there was none;
- every request is checked against the Role in deploy/kubernetes/rbac.yaml (403 as the real
  server words it);
- a watch resumed from a compacted resourceVersion gets 410 Gone;
- DELETE with background propagation removes the Job's pods and the ConfigMaps it owns.
Its controllers:
- Kueue: Jobs labelled with a queue are admitted (un-suspended) in creation order while fewer
  than `quota` admitted Jobs are unfinished;
- the job controller makes one pod per un-suspended Job, and fails the Job at its
  activeDeadlineSeconds (DeadlineExceeded);
- the kubelet runs the pod's command as a local process: the image is mapped to a python
  (`images`; an unknown one gives ErrImagePull), the pod's volumes are materialised in a sandbox
  where each mountPath P is <sandbox>/P, env comes only from the container's spec (secretKeyRef
  read from `secrets`), and stdout+stderr are its log.
Every request body is kept in `bodies`, so a test can scan every byte for a secret.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "deploy" / "kubernetes" / "rbac.yaml"
VERSIONS = ("1.30.0", "1.37.0")
TOKEN = "fake-cluster-token"
USER = "system:serviceaccount:evalhub:evalhub-apply"

Obj = dict[str, Any]


@dataclass
class Image:
    """What the kubelet runs for an image: `evalhub` is this python's `-m evalhub.cli.main`;
    `oom`: the process is killed as if over its memory limit."""

    python: str = sys.executable
    oom: bool = False


@dataclass
class Fault:
    """The next request matching `method` and `path` (a regex) fails with `status`."""

    method: str
    path: str
    status: int


@dataclass
class _Pod:
    obj: Obj
    job: str
    sandbox: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    oom: bool = False


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _allowed_rules(role: Path) -> set[tuple[str, str, str]]:
    allowed = set()
    for doc in yaml.safe_load_all(role.read_text()):
        if doc and doc.get("kind") == "Role":
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            allowed.add((verb, group, resource))
    return allowed


def _status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


class FakeCluster:
    def __init__(
        self,
        workdir: Path,
        images: dict[str, Image] | None = None,
        secrets: dict[str, dict[str, str]] | None = None,
        quota: int | None = None,
        role: Path = ROLE,
        gpus: int = 0,
    ) -> None:
        self.workdir = workdir
        self.images = images or {}
        self.secrets = secrets or {}  # "<namespace>/<name>" -> data
        self.quota = quota
        self.allowed = _allowed_rules(role)
        self.gpus = gpus
        self.configmaps: dict[tuple[str, str], Obj] = {}
        self.jobs: dict[tuple[str, str], Obj] = {}
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.history: list[tuple[int, str, Obj]] = []  # (resourceVersion, type, Job)
        self.compacted = 0  # watches from a version at or below this get 410 Gone
        self.invalid: list[str] = []
        self.bodies: list[bytes] = []
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.expire_next_watch = False  # the next resumed watch gets 410 Gone
        self.gone_sent = 0
        # Called with (method, path, body) before a request is served: a test's other actor.
        self.before: Callable[[str, str, bytes], None] | None = None
        self.admitted_at_once = 0  # the most Kueue-admitted unfinished Jobs seen at one time
        self.created_jobs: list[str] = []
        self._version = itertools.count(1000)
        self._rv = 1000
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"cluster": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        serving = threading.Thread(target=self._server.serve_forever, daemon=True)
        serving.start()
        self._threads.append(serving)
        if not any(t.name == "fake-controllers" for t in self._threads):
            controllers = threading.Thread(
                target=self._control, name="fake-controllers", daemon=True
            )
            controllers.start()
            self._threads.append(controllers)

    def stop_api(self) -> None:
        """The API server dies (the controllers and the kubelet keep going)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.stop_api()
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
            for pod in self.pods.values():
                _kill(pod)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, namespace: str = "evalhub") -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "evalhub", "user": {"token": TOKEN}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {
                                "cluster": "fake",
                                "user": "evalhub",
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    # -- for tests -------------------------------------------------------------------------------

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: resumed watches get 410."""
        with self._lock:
            self.compacted = self._rv
            self.history.clear()

    def wait_for(self, predicate: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the fake cluster never reached the expected state")
                self._lock.wait(min(left, 0.1))

    def running_processes(self) -> int:
        with self._lock:
            return sum(1 for p in self.pods.values() if p.proc and p.proc.poll() is None)

    # -- storage ---------------------------------------------------------------------------------

    def _bump(self, obj: Obj) -> None:
        self._rv = next(self._version)
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _emit(self, kind: str, job: Obj) -> None:
        self._bump(job)
        self.history.append((self._rv, kind, copy.deepcopy(job)))
        self._lock.notify_all()

    def create(self, resource: str, namespace: str, obj: Obj) -> tuple[int, Obj]:
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                message = f"{resource} is invalid for Kubernetes {version}: {exc.message}"
                self.invalid.append(message)
                return 422, _status(422, "Invalid", message)
        name = obj["metadata"]["name"]
        store = self.jobs if resource == "jobs" else self.configmaps
        with self._lock:
            if (namespace, name) in store:
                group = "batch" if resource == "jobs" else ""
                message = f'{resource}{"." + group if group else ""} "{name}" already exists'
                return 409, _status(409, "AlreadyExists", message, {"name": name, "kind": resource})
            meta = obj["metadata"]
            meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now())
            if resource == "jobs":
                obj["status"] = {}
                labels = obj["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {})
                labels.update(
                    {"batch.kubernetes.io/job-name": name, "job-name": name,
                     "batch.kubernetes.io/controller-uid": meta["uid"]}
                )  # fmt: skip
                store[(namespace, name)] = obj
                self.created_jobs.append(name)
                self._emit("ADDED", obj)
            else:
                self._bump(obj)
                store[(namespace, name)] = obj
                self._lock.notify_all()
            return 201, obj

    def delete_job(self, namespace: str, name: str) -> tuple[int, Obj]:
        with self._lock:
            job = self.jobs.pop((namespace, name), None)
            if job is None:
                return 404, _status(404, "NotFound", f'jobs.batch "{name}" not found')
            uid = job["metadata"]["uid"]
            for key, pod in list(self.pods.items()):
                if pod.job == name and key[0] == namespace:
                    _kill(pod)
                    del self.pods[key]
            for key, cm in list(self.configmaps.items()):
                owners = cm["metadata"].get("ownerReferences") or []
                if any(o["uid"] == uid for o in owners):
                    del self.configmaps[key]
            self._emit("DELETED", job)
            return 200, _status(200, "", "") | {"status": "Success"}

    def evict(self, job_name: str) -> None:
        """The node evicts the Job's pod (its Job then fails)."""
        with self._lock:
            for pod in self.pods.values():
                if pod.job == job_name:
                    _kill(pod)
                    pod.obj["status"].update(
                        phase="Failed",
                        reason="Evicted",
                        message="The node was low on resource: memory.",
                    )
                    self._lock.notify_all()

    def workloads(self, namespace: str, selector: str | None) -> Obj:
        """Kueue's Workload of each queued Job: the ones past the quota say why they wait."""
        with self._lock:
            items = []
            for (ns, name), job in self.jobs.items():
                labels = job["metadata"].get("labels", {})
                if ns != namespace or "kueue.x-k8s.io/queue-name" not in labels:
                    continue
                waiting = bool(job["spec"].get("suspend"))
                message = (
                    "couldn't assign flavors to pod set main: insufficient unused quota for cpu "
                    f"in flavor default-flavor, {self.quota} admitted already"
                )
                workload = {
                    "apiVersion": "kueue.x-k8s.io/v1beta1",
                    "kind": "Workload",
                    "metadata": {
                        "name": f"job-{name}",
                        "namespace": ns,
                        "labels": {"kueue.x-k8s.io/job-uid": job["metadata"]["uid"]},
                    },
                    "status": {
                        "conditions": [
                            {
                                "type": "QuotaReserved",
                                "status": "False" if waiting else "True",
                                "reason": "Pending" if waiting else "QuotaReserved",
                                "message": message if waiting else "Quota reserved",
                            }
                        ]
                    },
                }
                if _matches(workload, selector):
                    items.append(workload)
        return {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "WorkloadList", "items": items}

    # -- controllers -----------------------------------------------------------------------------

    def _control(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._kueue()
                for (namespace, name), job in list(self.jobs.items()):
                    self._job_controller(namespace, name, job)
                self._lock.wait(0.05)

    def _kueue(self) -> None:
        queued = [
            j for j in self.jobs.values()
            if "kueue.x-k8s.io/queue-name" in j["metadata"].get("labels", {})
            and not _done(j)
        ]  # fmt: skip
        admitted = [j for j in queued if not j["spec"].get("suspend")]
        for job in sorted(queued, key=lambda j: self.created_jobs.index(j["metadata"]["name"])):
            if job["spec"].get("suspend") and (self.quota is None or len(admitted) < self.quota):
                job["spec"]["suspend"] = False
                admitted.append(job)
                self._emit("MODIFIED", job)
        self.admitted_at_once = max(self.admitted_at_once, len(admitted))

    def _job_controller(self, namespace: str, name: str, job: Obj) -> None:
        if _done(job) or job["spec"].get("suspend"):
            return
        pods = [p for (ns, _), p in self.pods.items() if ns == namespace and p.job == name]
        status = job["status"]
        if not pods:
            pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
            template = copy.deepcopy(job["spec"]["template"])
            obj = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": template["metadata"]
                | {
                    "name": pod_name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": _now(),
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": name,
                            "uid": job["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": template["spec"],
                "status": {"phase": "Pending"},
            }
            self.pods[(namespace, pod_name)] = _Pod(obj, name)
            status.update(active=1, startTime=_now(), ready=0)
            job["_started"] = time.monotonic()
            self._emit("MODIFIED", job)
            return
        pod = pods[0]
        deadline = job["spec"].get("activeDeadlineSeconds")
        if deadline and time.monotonic() - job["_started"] > deadline:
            _kill(pod)
            pod.obj["status"]["phase"] = "Failed"
            self._fail(job, "DeadlineExceeded", "Job was active longer than specified deadline")
            return
        self._kubelet(namespace, pod)
        phase = pod.obj["status"]["phase"]
        if phase == "Succeeded":
            status.update(active=0, succeeded=1, completionTime=_now())
            status["conditions"] = [
                _condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                _condition(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                ),
            ]
            self._emit("MODIFIED", job)
        elif phase == "Failed":
            self._fail(job, "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    def _fail(self, job: Obj, reason: str, message: str) -> None:
        job["status"].update(active=0, failed=1)
        job["status"]["conditions"] = [
            _condition("FailureTarget", reason, message),
            _condition("Failed", reason, message),
        ]
        self._emit("MODIFIED", job)

    def _kubelet(self, namespace: str, pod: _Pod) -> None:
        status = pod.obj["status"]
        spec = pod.obj["spec"]
        (container,) = spec["containers"]
        if pod.proc is not None:
            if pod.oom and pod.proc.poll() is None and time.monotonic() - pod.started > 0.2:
                _kill(pod)
                pod.proc.wait()
            code = pod.proc.poll()
            if code is None or status["phase"] != "Running":
                return
            reason = "OOMKilled" if pod.oom else ("Completed" if code == 0 else "Error")
            code = 137 if pod.oom else code
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            status["containerStatuses"] = [
                _container(
                    container,
                    {"terminated": {"exitCode": code, "reason": reason, "finishedAt": _now()}},
                )
            ]
            return
        if status["phase"] != "Pending":
            return
        gpus = int((container.get("resources") or {}).get("requests", {}).get("nvidia.com/gpu", 0))
        if gpus > self.gpus:
            status["conditions"] = [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}
            ]  # fmt: skip
            return
        waiting = self._cannot_start(namespace, spec, container)
        if waiting is not None:
            status["containerStatuses"] = [_container(container, {"waiting": waiting})]
            return
        self._start(namespace, pod, container)

    def _cannot_start(self, namespace: str, spec: Obj, container: Obj) -> Obj | None:
        for volume in spec.get("volumes", []):
            source = volume.get("configMap")
            if source and (namespace, source["name"]) not in self.configmaps:
                return {
                    "reason": "ContainerCreating",
                    "message": f'configmap "{source["name"]}" not found',
                }
        if container["image"] not in self.images:
            return {
                "reason": "ErrImagePull",
                "message": f'failed to pull and unpack image "{container["image"]}": not found',
            }
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref is not None:
                data = self.secrets.get(f"{namespace}/{ref['name']}")
                if data is None or ref["key"] not in data:
                    return {
                        "reason": "CreateContainerConfigError",
                        "message": f'secret "{ref["name"]}" not found'
                        if data is None
                        else f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}",
                    }
        return None

    def _start(self, namespace: str, pod: _Pod, container: Obj) -> None:
        spec = pod.obj["spec"]
        sandbox = self.workdir / "pods" / pod.obj["metadata"]["name"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        for path, mount in mounts.items():
            target = sandbox / path.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            source = volumes[mount["name"]].get("configMap")
            if source is not None:
                cm = self.configmaps[(namespace, source["name"])]
                for item in source["items"]:
                    if item["key"] in (cm.get("data") or {}):
                        data = cm["data"][item["key"]].encode()
                    else:
                        data = base64.b64decode(cm["binaryData"][item["key"]])
                    (target / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                    (target / item["path"]).write_bytes(data)

        def inside(value: str) -> str:
            # The process sees the sandbox as its root: /evalhub/out is <sandbox>/evalhub/out.
            return (
                str(sandbox / value.lstrip("/"))
                if any(value == m or value.startswith(m.rstrip("/") + "/") for m in mounts)
                else value
            )

        workdir = sandbox / container["workingDir"].lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for var in container.get("env", []):
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref is not None:
                env[var["name"]] = self.secrets[f"{namespace}/{ref['name']}"][ref["key"]]
            else:
                env[var["name"]] = inside(var["value"])
        image = self.images[container["image"]]
        command = list(container["command"]) + list(container.get("args", []))
        if command[0] == "evalhub":
            command = [image.python, "-m", "evalhub.cli.main", *command[1:]]
        env["PYTHONPATH"] = str(REPO)  # where the image has evalhub installed
        log = (sandbox / "container.log").open("wb")
        pod.proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        pod.sandbox = sandbox
        pod.started = time.monotonic()
        pod.oom = image.oom
        pod.obj["status"].update(phase="Running", startTime=_now())
        pod.obj["status"]["containerStatuses"] = [
            _container(container, {"running": {"startedAt": _now()}})
        ]

    def log(self, namespace: str, name: str) -> tuple[int, bytes]:
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return 404, json.dumps(
                    _status(404, "NotFound", f'pods "{name}" not found')
                ).encode()
            if pod.sandbox is None:
                message = f'container "run-unit" in pod "{name}" is waiting to start'
                return 400, json.dumps(_status(400, "BadRequest", message)).encode()
            return 200, (pod.sandbox / "container.log").read_bytes()


def _done(job: Obj) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in job["status"].get("conditions", [])
    )


def _condition(kind: str, reason: str, message: str) -> Obj:
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": _now(), "lastTransitionTime": _now()}  # fmt: skip


def _container(container: Obj, state: Obj) -> Obj:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": "running" in state,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


def _kill(pod: _Pod) -> None:
    if pod.proc is not None and pod.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pod.proc.pid, signal.SIGKILL)
        pod.proc.wait(10)


def _matches(obj: Obj, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _public(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away
            super().handle_error(request, client_address)


_ROUTES = [
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs$"), "batch", "jobs", False),
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)$"), "batch", "jobs", True),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/configmaps$"), "", "configmaps", False),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/configmaps/([^/]+)$"), "", "configmaps", True),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/pods$"), "", "pods", False),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$"), "", "pods/log", True),
    (
        re.compile(r"^/apis/kueue.x-k8s.io/v1beta1/namespaces/([^/]+)/workloads$"),
        "kueue.x-k8s.io",
        "workloads",
        False,
    ),
]


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: Obj | bytes, kind: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        cluster = self.cluster
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        cluster.bodies.append(self.path.encode() + b"\n" + bytes(self.headers) + body)
        cluster.requests.append((method, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
        found = next(
            ((r.match(url.path), g, s, n) for r, g, s, n in _ROUTES if r.match(url.path)), None
        )
        if found is None or found[0] is None:
            return self._send(
                404, _status(404, "NotFound", f"the server could not find {url.path}")
            )
        match, group, resource, named = found
        namespace = match.group(1)
        name = match.group(2) if named else None
        verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}.get(method)
        if verb is None:
            verb = "get" if named else ("watch" if query.get("watch") == "true" else "list")
        if (verb, group, resource) not in cluster.allowed:
            kind = resource + (f".{group}" if group else "")
            message = (
                f'{kind} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API '
                f'group "{group}" in the namespace "{namespace}"'
            )
            return self._send(
                403, _status(403, "Forbidden", message, {"group": group, "kind": resource})
            )
        for fault in list(cluster.faults):
            if fault.method == method and re.search(fault.path, url.path):
                cluster.faults.remove(fault)
                return self._send(
                    fault.status, _status(fault.status, "InternalError", f"injected {fault.status}")
                )
        if cluster.before is not None:
            cluster.before(method, url.path, body)
        if resource == "pods/log":
            code, text = cluster.log(namespace, name or "")
            return self._send(code, text, "text/plain" if code == 200 else "application/json")
        if method == "POST":
            code, obj = cluster.create(resource, namespace, json.loads(body))
            return self._send(code, _public(obj))
        if resource == "jobs" and method == "DELETE":
            options = json.loads(body) if body else {}
            policy = query.get("propagationPolicy") or options.get("propagationPolicy")
            if policy not in ("Background", "Foreground"):
                message = "evalhub must delete Jobs with propagation (their pods stay otherwise)"
                return self._send(400, _status(400, "BadRequest", message))
            code, obj = cluster.delete_job(namespace, name or "")
            return self._send(code, obj)
        if resource == "jobs" and method == "PATCH":
            return self._patch(namespace, name or "", body)
        if verb == "watch":
            return self._watch(namespace, query)
        return self._get(resource, namespace, name, query)

    def _get(self, resource: str, namespace: str, name: str | None, query: dict[str, str]) -> None:
        cluster = self.cluster
        if resource == "workloads":
            return self._send(200, cluster.workloads(namespace, query.get("labelSelector")))
        with cluster._lock:
            if resource == "pods":
                items = [p.obj for (ns, _), p in cluster.pods.items() if ns == namespace]
            else:
                store = cluster.jobs if resource == "jobs" else cluster.configmaps
                if name is not None:
                    obj = store.get((namespace, name))
                    if obj is None:
                        return self._send(
                            404, _status(404, "NotFound", f'{resource} "{name}" not found')
                        )
                    return self._send(200, _public(obj))
                items = [o for (ns, _), o in store.items() if ns == namespace]
            selected = [
                _public(copy.deepcopy(o)) for o in items if _matches(o, query.get("labelSelector"))
            ]
            kind = {"jobs": "JobList", "pods": "PodList", "configmaps": "ConfigMapList"}[resource]
            version = "batch/v1" if resource == "jobs" else "v1"
            listed = {
                "apiVersion": version,
                "kind": kind,
                "metadata": {"resourceVersion": str(cluster._rv)},
                "items": selected,
            }
        self._send(200, listed)

    def _patch(self, namespace: str, name: str, body: bytes) -> None:
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            message = f"evalhub's patches are merge patches, not {self.headers.get('Content-Type')}"
            return self._send(415, _status(415, "UnsupportedMediaType", message))
        patch = json.loads(body)
        cluster = self.cluster
        with cluster._lock:
            job = cluster.jobs.get((namespace, name))
            if job is None:
                return self._send(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
            if set(patch) != {"metadata"} or set(patch["metadata"]) != {"annotations"}:
                return self._send(422, _status(422, "Invalid", "only annotations are patched here"))
            job["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
            cluster._emit("MODIFIED", job)
            self._send(200, _public(job))

    def _watch(self, namespace: str, query: dict[str, str]) -> None:
        since = int(query.get("resourceVersion") or 0)
        selector = query.get("labelSelector")
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 30)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while True:
                batch, since, more = self._events(namespace, since, selector, deadline)
                for event in batch:
                    data = json.dumps(event).encode() + b"\n"
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                if not more:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return

    def _events(
        self, namespace: str, since: int, selector: str | None, deadline: float
    ) -> tuple[list[Obj], int, bool]:
        """The events after `since` (waiting a little for some), the version reached, and
        whether the watch goes on."""
        cluster = self.cluster
        with cluster._lock:
            expired = bool(since) and cluster.expire_next_watch
            if expired or (since and since <= cluster.compacted):
                cluster.expire_next_watch = False
                cluster.gone_sent += 1
                message = f"too old resource version: {since} ({cluster.compacted})"
                return [{"type": "ERROR", "object": _status(410, "Expired", message)}], since, False
            if not since:
                current = [
                    {"type": "ADDED", "object": _public(copy.deepcopy(job))}
                    for (ns, _), job in cluster.jobs.items()
                    if ns == namespace and _matches(job, selector)
                ]
                return current, cluster._rv, True
            if not any(v > since for v, _, _ in cluster.history):
                cluster._lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            batch = []
            for version, kind, job in cluster.history:
                if version > since:
                    since = version
                    if job["metadata"]["namespace"] == namespace and _matches(job, selector):
                        batch.append({"type": kind, "object": _public(job)})
            alive = time.monotonic() < deadline and cluster._server is not None
            return batch, since, alive

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")


@contextlib.contextmanager
def fake_cluster(workdir: Path, **options: Any) -> Iterator[FakeCluster]:
    cluster = FakeCluster(workdir, **options)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


def main(argv: list[str] | None = None) -> int:
    """Serve a fake cluster from its own process (for bench/k8s_bench.py): prints its URL,
    then serves until stdin closes."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.k8s_fake")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--image", action="append", default=[])
    parser.add_argument("--secret", action="append", default=[], help="NS/NAME:KEY=VALUE")
    parser.add_argument("--quota", type=int)
    args = parser.parse_args(argv)
    secrets: dict[str, dict[str, str]] = {}
    for item in args.secret:
        where, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        secrets.setdefault(where, {})[key] = value
    with fake_cluster(
        args.workdir, images={i: Image() for i in args.image}, secrets=secrets, quota=args.quota
    ) as cluster:
        print(cluster.url, flush=True)
        sys.stdin.read()
        print(len(cluster.requests), flush=True, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
