"""The Kubernetes API as the executor uses it: connecting, and the client's exceptions turned
into reasons a user can act on (the boundary where third-party errors become ours)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from evalhub.core.errors import ConfigError
from evalhub.core.project import KubernetesSettings

RBAC_HINT = (
    "grant it in the Role of evalhub's user; deploy/kubernetes/rbac.yaml lists what it needs"
)


class ClusterError(Exception):
    """A call to the API server failed; `reason` says why, for a failed unit."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def connect(settings: KubernetesSettings, root: Path) -> client.ApiClient:
    """A client for the configured cluster: the kubeconfig named in settings, else the
    in-cluster service account, else $KUBECONFIG / ~/.kube/config."""
    configuration = client.Configuration()
    try:
        if settings.kubeconfig:
            path = Path(settings.kubeconfig)
            path = path if path.is_absolute() else root / path
            config.load_kube_config(str(path), settings.context, client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and not settings.context:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(context=settings.context, client_configuration=configuration)
    except (ConfigException, OSError, ValueError) as exc:
        raise ConfigError(
            f"executors.kubernetes: cannot load the cluster's configuration: {exc}",
            "set executors.kubernetes.kubeconfig (and context) in evalhub.yaml, or KUBECONFIG",
        ) from None
    # Fail fast on a dead API server: each failed unit says so instead of retrying for minutes.
    configuration.retries = urllib3.util.Retry(total=2, connect=2, read=0, backoff_factor=0.2)
    return client.ApiClient(configuration)


def reason(exc: BaseException, host: str, doing: str) -> ClusterError:
    """What a failed call means, as a ClusterError naming what to do."""
    if isinstance(exc, ApiException):
        status = exc.status
        message = _status_message(exc)
        if status == 403:
            return ClusterError(
                f"the API server refused to {doing}: {message} ({RBAC_HINT})", status
            )
        if status == 401:
            return ClusterError(
                f"the API server did not accept evalhub's credentials ({message}); check the "
                "kubeconfig's user",
                status,
            )
        return ClusterError(f"the API server failed to {doing}: {status} {message}", status)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        cause = getattr(exc, "reason", None) or exc
        return ClusterError(f"the Kubernetes API server at {host} is unreachable ({cause})")
    return ClusterError(f"cannot {doing}: {type(exc).__name__}: {exc}")


def _status_message(exc: ApiException) -> str:
    """The message of the Status object the API server answers errors with."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc.reason or "").strip() or "no message"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc.reason or "no message")
