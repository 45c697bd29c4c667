"""An OCI registry over the distribution API, through oras-py's client (its session and
auth backends), with evalhub's own bounds on waiting.

oras-py retries every failed request five times with sleeps of 2 + 3^n seconds (over two
minutes): a wrong password or a dead registry would hang `apply`. Requests here go through
the client's undecorated request method instead, with a connect and a read timeout of
`registry.timeout_seconds` (default 10) and at most one quick retry for a refused or dropped
connection or a 5xx answer; 401/403 are never retried, nor is a timeout (a registry that
accepted the connection and never answered will not answer the retry either). Once the
registry has not answered, this client fails every later request at once, so an apply with
many results waits for it once, not once per result.

Credentials, first found wins: a bearer token from `registry.token_env`; user and password
from `registry.username_env` / `registry.password_env`; the docker config file
(`registry.docker_config`, $DOCKER_CONFIG/config.json or ~/.docker/config.json). Plain HTTP
only with `insecure`, and only to a loopback host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from evalhub.adapters.oci.artifact import INDEX, MANIFEST, parse_json
from evalhub.adapters.oci.references import Target, is_loopback
from evalhub.core.errors import ConfigError, PublishError

TIMEOUT = 10.0  # seconds to connect, and seconds between bytes (registry.timeout_seconds)
ATTEMPTS = 2
RETRY_PAUSE = 0.5
ACCEPT = ", ".join([MANIFEST, INDEX, "application/vnd.docker.distribution.manifest.v2+json"])


@dataclass(frozen=True)
class Credentials:
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    docker_config: Path | None = None  # read when no username or token is given
    source: str = "no credentials"  # where they came from, for messages


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", (self.timeout, self.timeout))
        return super().request(method, url, *args, **kwargs)


class OciRegistry:
    def __init__(
        self,
        target: Target,
        credentials: Credentials,
        insecure: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        if target.kind != "registry":
            raise ValueError(f"{target} is not a registry")
        if insecure and not is_loopback(target.host):
            raise ConfigError(
                f"refusing plain HTTP to {target.host}: `insecure` is allowed only for a "
                "loopback registry (localhost, 127.0.0.0/8, ::1)",
                "serve the registry over TLS, or set registry.insecure: false",
            )
        self.display = str(target)
        self.target = target
        self.credentials = credentials
        self.prefix = "http" if insecure else "https"
        self.timeout = timeout
        self._client: Any = None
        self._down: PublishError | None = None  # the registry did not answer: not again

    # -- OciStore ------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        response = self._request("HEAD", f"blobs/{digest}")
        if response.status_code == 404:
            return False
        self._expect(response, (200,), f"checking blob {digest}")
        return True

    def has_manifest(self, digest: str) -> bool:
        response = self._request("HEAD", f"manifests/{digest}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return False
        self._expect(response, (200,), f"checking manifest {digest}")
        return True

    def missing(self, digests: Collection[str]) -> set[str]:
        return {d for d in digests if not self.has_manifest(d)}

    def recover(self) -> bool:
        return False  # a registry keeps its own tags

    def put_blob(self, digest: str, data: bytes) -> None:
        started = self._request("POST", "blobs/uploads/", headers={"Content-Length": "0"})
        self._expect(started, (202,), f"starting the upload of {digest}")
        location = started.headers.get("Location", "")
        if not location:
            raise PublishError(f"{self.display} started an upload without a Location")
        if location.startswith("/"):
            location = f"{self.prefix}://{self.target.host}{location}"
        separator = "&" if "?" in location else "?"
        response = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._expect(response, (201,), f"uploading blob {digest}")

    def get_blob(self, digest: str) -> bytes | None:
        response = self._request("GET", f"blobs/{digest}")
        if response.status_code == 404:
            return None
        self._expect(response, (200,), f"fetching blob {digest}")
        return bytes(response.content)

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> bool:
        response = self._request(
            "PUT", f"manifests/{reference}", data=data, headers={"Content-Type": media_type}
        )
        self._expect(response, (201,), f"pushing manifest {reference}")
        return "OCI-Subject" in response.headers

    def get_manifest(self, reference: str) -> bytes | None:
        response = self._request("GET", f"manifests/{reference}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        self._expect(response, (200,), f"fetching manifest {reference}")
        return bytes(response.content)

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        response = self._request("GET", f"referrers/{digest}", headers={"Accept": INDEX})
        if response.status_code in (404, 405, 400):
            return None  # no referrers API (docker-registry 2.8): use the tag fallback
        self._expect(response, (200,), f"listing the referrers of {digest}")
        manifests = parse_json(response.content).get("manifests")
        return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []

    def tags(self) -> list[str]:
        response = self._request("GET", "tags/list?n=10000")
        if response.status_code == 404:
            return []
        self._expect(response, (200,), "listing tags")
        tags = parse_json(response.content).get("tags")
        return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []

    # -- transport -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        client = self._connect()
        url = path if "://" in path else self._url(path)
        try:
            response = self._bounded(lambda: _send(client, url, method, data, dict(headers or {})))
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            # oras-py's auth backends answer a challenge they cannot meet like this.
            raise self._auth_error(None, f"cannot answer its challenge ({exc})") from exc
        if response.status_code in (401, 403):
            raise self._auth_error(response.status_code, _errors(response))
        return response

    def _bounded(self, send: Callable[[], requests.Response]) -> requests.Response:
        """`send`, tried again once after a refused or dropped connection or a 5xx, never
        after a timeout; errors translated. A registry that did not answer stays down."""
        if self._down is not None:
            raise self._down
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = send()
            except requests.exceptions.SSLError as exc:
                raise PublishError(
                    f"TLS with {self.display} failed: {_reason(exc)}",
                    "a loopback registry serving plain HTTP needs registry.insecure: true",
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                timed_out = isinstance(exc, requests.Timeout) or "timed out" in str(exc)
                if attempt < ATTEMPTS and not timed_out:
                    time.sleep(RETRY_PAUSE)
                    continue
                self._down = self._unreachable(exc, timed_out)
                raise self._down from exc
            except requests.RequestException as exc:
                raise PublishError(f"talking to {self.display} failed: {_reason(exc)}") from exc
            if response.status_code >= 500 and attempt < ATTEMPTS:
                time.sleep(RETRY_PAUSE)
                continue
            return response
        raise AssertionError("unreachable")

    def _unreachable(self, exc: Exception, timed_out: bool) -> PublishError:
        if timed_out:
            return PublishError(
                f"cannot reach {self.display}: no answer within {self.timeout:g} s",
                "check that the registry is running and answering (registry.timeout_seconds "
                "sets the wait); the result stays recorded and the next apply publishes it",
            )
        return PublishError(
            f"cannot reach {self.display}: {_reason(exc)}",
            "check that the registry is running and that registry.target names it",
        )

    def _url(self, path: str) -> str:
        return f"{self.prefix}://{self.target.host}/v2/{self.target.repository}/{path}"

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        import oras.container
        import oras.provider

        ping = self._ping()
        challenge = ping.headers.get("Www-Authenticate", "") if ping.status_code == 401 else ""
        bearer = challenge.lower().startswith("bearer")
        client = oras.provider.Registry(
            hostname=self.target.host,
            insecure=self.prefix == "http",
            auth_backend="token" if bearer else "basic",
        )
        session = _TimeoutSession(self.timeout)
        session.cookies = client.session.cookies  # oras ignores cookies: keep its policy
        client.session = client.auth.session = session
        creds = self.credentials
        client.auth._basic_auth = None  # "no credentials": a 401 then reports that plainly
        if creds.token:
            client.auth.set_token_auth(creds.token)
            client.set_header("Authorization", f"Bearer {creds.token}")
        elif creds.username is not None and creds.password is not None:
            client.auth.set_basic_auth(creds.username, creds.password)
        elif creds.docker_config is not None and creds.docker_config.is_file():
            container = oras.container.Container(self.target.repository, self.target.host)
            client.auth.load_configs(container, configs=[str(creds.docker_config)])
        if challenge and not bearer and client.auth._basic_auth:
            client.set_header("Authorization", f"Basic {client.auth._basic_auth}")
        self._client = client
        return client

    def _ping(self) -> requests.Response:
        """GET /v2/ without credentials: is the registry there, and how does it authenticate?"""
        url = f"{self.prefix}://{self.target.host}/v2/"
        with _TimeoutSession(self.timeout) as session:
            return self._bounded(lambda: session.get(url))

    def _auth_error(self, status: int | None, detail: str) -> PublishError:
        creds = self.credentials
        have = (
            creds.token or creds.username or (creds.docker_config and creds.docker_config.is_file())
        )
        what = "refused the credentials" if have else "requires credentials and none were given"
        if status == 403:
            what = "denied access with the credentials given"
        code = f" (HTTP {status})" if status else ""
        return PublishError(
            f"{self.display} {what}{code}: {detail or 'authentication failed'}",
            f"credentials come from {creds.source}; set registry.username_env and "
            "registry.password_env (or registry.token_env) to environment variables holding "
            "valid ones, or log in with a docker config file",
        )

    def _expect(self, response: requests.Response, ok: tuple[int, ...], doing: str) -> None:
        if response.status_code not in ok:
            raise PublishError(
                f"{self.display} refused {doing} (HTTP {response.status_code}): "
                f"{_errors(response) or response.reason}"
            )


def _send(
    client: Any, url: str, method: str, data: bytes | None, headers: dict[str, str]
) -> requests.Response:
    import oras.provider

    # The client's request method without its @retry decorator (functools.wraps keeps it).
    unretried = oras.provider.Registry.do_request.__wrapped__
    headers = {**client.headers, **headers}
    response: requests.Response = unretried(client, url, method, data, headers)
    return response


def _errors(response: requests.Response) -> str:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(str(e.get("message") or e.get("code")) for e in errors if isinstance(e, dict))


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return text if len(text) < 200 else text[:197] + "..."
