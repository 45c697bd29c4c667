"""Talking to a control plane (`evalhub jobs …`): which server, with which token, and the job
bodies read from files.

Servers are named in a profiles file, `$XDG_CONFIG_HOME/evalhub/servers.yaml` (default
~/.config/evalhub/servers.yaml; `EVALHUB_SERVERS` names another) — not EvalHub's CLI's
config.yaml beside it. A token is referenced by the name of the variable holding it:

    default: local
    servers:
      local: {url: "http://127.0.0.1:8080"}
      ci: {url: "https://evalhub.example", token_env: EVALHUB_CI_TOKEN}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError

from evalhub.app import compose
from evalhub.core.api import JobRequest
from evalhub.core.errors import ConfigError
from evalhub.core.spec.base import EnvVarName, Strict

if TYPE_CHECKING:
    from evalhub.client import EvalhubClient

DEFAULT_SERVER = "http://127.0.0.1:8080"


class ServerProfile(Strict):
    url: str = Field(min_length=1)
    token_env: EnvVarName | None = None


class Profiles(Strict):
    default: str | None = None
    servers: dict[str, ServerProfile] = Field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    url: str
    token: str | None


def profiles_file(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("EVALHUB_SERVERS"):
        return Path(env["EVALHUB_SERVERS"])
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "evalhub" / "servers.yaml"


def _load(path: Path) -> Profiles:
    if not path.is_file():
        return Profiles()
    data = _document(path)
    try:
        return Profiles.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{compose.display(path)}: {exc.errors()[0]['msg']} at "
            + ".".join(str(p) for p in exc.errors()[0]["loc"]),
            "see `evalhub jobs --help` for the profiles file's shape",
        ) from None


def _document(path: Path) -> Any:
    raw, unreadable = compose.read_spec_file(path, compose.display(path))
    if raw is None:
        raise ConfigError(unreadable.message if unreadable else f"cannot read {path}")
    docs, problems = compose.parse_documents(compose.display(path), raw)
    if problems or len(docs) != 1:
        why = problems[0].render() if problems else "expected exactly one YAML document"
        raise ConfigError(f"{compose.display(path)}: {why}")
    return docs[0].data


def server(url: str | None, profile: str | None, env: dict[str, str] | None = None) -> Server:
    """The server to talk to: --server, else the --profile (or the default profile), else
    127.0.0.1:8080. A profile's token variable must be set."""
    env = dict(os.environ) if env is None else env
    if url is not None:
        return Server(url, None)
    path = profiles_file(env)
    profiles = _load(path)
    name = profile or profiles.default
    if name is None:
        return Server(DEFAULT_SERVER, None)
    chosen = profiles.servers.get(name)
    if chosen is None:
        raise ConfigError(
            f"no server profile {name!r} in {compose.display(path)}",
            f"profiles: {', '.join(sorted(profiles.servers)) or 'none'}",
        )
    token = env.get(chosen.token_env, "") if chosen.token_env else None
    if chosen.token_env and not token:
        raise ConfigError(
            f"profile {name!r} takes its token from {chosen.token_env}, which is not set",
            f"export {chosen.token_env}",
        )
    return Server(chosen.url, token)


def connect(target: Server) -> EvalhubClient:
    return compose.api_client(target.url, target.token)


def job_request(path: Path) -> JobRequest:
    """A job body from a YAML or JSON file (EvalHub's shape)."""
    try:
        return JobRequest.model_validate(_document(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{compose.display(path)}: {where + ': ' if where else ''}{first['msg']}",
            "a job names `name`, `model` and `benchmarks` or `collection` (or an `evaluation`)",
        ) from None
