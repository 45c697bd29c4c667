"""A unit as it runs inside a container: the same JobSpec, its paths moved to where the
container sees them, and what must be mounted there (read-only) to run it.

Only the files a unit names enter its container: its identity files (datasets, task files),
a bring-your-own adapter's code files and its tokenizer directories. Its fingerprint and every
field of identity stay as they are, except a loopback endpoint's host, which the container
reaches through a tunnel (`tunnels`): the record keeps the host's JobSpec, so identity does not
change with the executor. Pure: paths in, paths out; any container executor can use it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from evalhub.core.job import JobSpec
from evalhub.core.resolved import ResolvedModel
from evalhub.core.runner_image import WORK_DIR, RunnerImage

PROJECT_DIR = f"{WORK_DIR}/project"  # the repository root, as far as the unit sees it
TOKENIZERS_DIR = f"{WORK_DIR}/tokenizers"
UNIT_FILE = f"{WORK_DIR}/unit.json"
RESULT_FILE = f"{WORK_DIR}/result.json"
OUTPUT_DIR = f"{WORK_DIR}/output"
HOST_ALIAS = "evalhub-host"  # a loopback endpoint, as the container reaches it


@dataclass(frozen=True)
class Tunnel:
    """A host loopback port the container reaches as HOST_ALIAS:port."""

    port: int


@dataclass(frozen=True)
class ContainerJob:
    job: JobSpec  # the container's unit.json
    files: dict[str, str] = field(default_factory=dict)  # container path -> host file
    directories: dict[str, str] = field(default_factory=dict)  # container path -> host directory
    env: dict[str, str] = field(default_factory=dict)  # plain variables (never a secret)
    tunnels: tuple[Tunnel, ...] = ()


# An endpoint URL as the Model spec allows it: scheme, host (a bracketed IPv6 or a name),
# optional port, the rest. (urllib is kept out of core, with the rest of the network modules.)
_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<host>\[[^\]]*\]|[^:/]+)(?::(?P<port>[0-9]+))?(?P<rest>.*)$"
)


def _parts(url: str) -> tuple[str, str, int, str]:
    found = _URL.match(url)
    if found is None:
        raise ValueError(f"not an endpoint URL: {url}")
    scheme, host = found["scheme"], found["host"].strip("[]")
    port = int(found["port"]) if found["port"] else (443 if scheme == "https" else 80)
    return scheme, host, port, found["rest"]


def is_loopback(url: str) -> bool:
    host = _parts(url)[1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port(url: str) -> int:
    return _parts(url)[2]


def _tunnelled(url: str) -> str:
    scheme, _, port, rest = _parts(url)
    return f"{scheme}://{HOST_ALIAS}:{port}{rest}"


def _inside(root: str, path: str) -> str | None:
    """`path` relative to `root` when it is inside it."""
    root, path = root.rstrip("/"), path.rstrip("/")
    if path == root:
        return "."
    return path[len(root) + 1 :] if path.startswith(root + "/") else None


def container_job(
    job: JobSpec, image: RunnerImage, host_env: dict[str, str] | None = None
) -> ContainerJob:
    """`job` moved into the container. `host_env`: the variables the unit's spec names that the
    host has (tokenizer directories are mounted; API keys go as secrets, never here)."""
    env = host_env or {}
    relative_root = _inside(job.project_root, job.spec_root)
    spec_root = f"{PROJECT_DIR}/{relative_root}" if relative_root else f"{WORK_DIR}/spec"
    spec_root = spec_root.rstrip("/").removesuffix("/.")
    files = {f"{spec_root}/{name}": f"{job.spec_root}/{name}" for name in job.spec.files}
    files |= {
        f"{PROJECT_DIR}/{name}": f"{job.project_root}/{name}" for name in job.spec.provider.code
    }
    directories: dict[str, str] = {}
    plain: dict[str, str] = {}
    tunnels: set[Tunnel] = set()
    models: list[ResolvedModel] = [job.spec.model]
    if job.spec.judge is not None:
        models.append(job.spec.judge)
    moved: list[ResolvedModel] = []
    for model in models:
        tokenizer = model.tokenizer
        if tokenizer is not None and tokenizer.path:
            directories[f"{PROJECT_DIR}/{tokenizer.path}"] = f"{job.project_root}/{tokenizer.path}"
        if tokenizer is not None and tokenizer.path_env and tokenizer.path_env in env:
            inside = f"{TOKENIZERS_DIR}/{tokenizer.path_env}"
            directories[inside] = env[tokenizer.path_env]
            plain[tokenizer.path_env] = inside
        endpoint = model.endpoint
        if endpoint is not None and is_loopback(endpoint.url):
            tunnels.add(Tunnel(_port(endpoint.url)))
            endpoint = endpoint.model_copy(update={"url": _tunnelled(endpoint.url)})
            model = model.model_copy(update={"endpoint": endpoint})
        moved.append(model)
    spec = job.spec.model_copy(
        update={"model": moved[0], "judge": moved[1] if len(moved) > 1 else None}
    )
    inside_job = job.model_copy(
        update={
            "spec": spec,
            "spec_root": spec_root,
            "project_root": PROJECT_DIR,
            "output_dir": OUTPUT_DIR,
            "environment": image.environment,
        }
    )
    return ContainerJob(
        inside_job, files, directories, plain, tuple(sorted(tunnels, key=lambda t: t.port))
    )
