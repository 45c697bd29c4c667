"""Which tool installs a managed environment's packages — uv when it can, pip otherwise — and
how uv is told what pip's configuration says.

uv reads none of pip's configuration, and on many machines pip's configuration is what makes an
install right: a `find-links` directory holding the CPU build of torch (without it the index's
multi-GB CUDA build is resolved), private indexes, a constraints file, a CA bundle, timeouts.
So uv is run only with pip's *effective* configuration translated (what `pip config list`
prints for the environment's own pip: every configuration file and every PIP_* variable), with
uv's own configuration files ignored (`--no-config`) and the UV_* variables that choose indexes
or versions removed, so uv and pip resolve from the same places. A pip setting uv has no
equivalent for (say `prefer-binary` or `no-deps`) makes the build use pip, and says so.

Index URLs may carry credentials, so they reach uv through its environment (never its command
line, which `ps` shows and the build log records), and the log shows them redacted.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Installer = Literal["auto", "uv", "pip"]
INSTALLERS: tuple[Installer, ...] = ("auto", "uv", "pip")
INSTALLER_ENV = "EVALHUB_INSTALLER"  # forces the installer whatever evalhub.yaml says

# pip's own order: a command's section overrides [global], a PIP_* variable overrides both.
_PRECEDENCE = ("global", "install", ":env:")

# Settings that change how pip talks or prints, not what gets installed.
_HARMLESS = frozenset(
    {
        "disable-pip-version-check", "no-input", "quiet", "verbose", "progress-bar",
        "no-color", "root-user-action", "no-warn-script-location", "no-warn-conflicts",
        "require-virtualenv", "cache-dir", "no-cache-dir", "log", "log-file", "yes",
        "break-system-packages", "use-pep517", "no-python-version-warning", "exists-action",
        "src", "python",
    }
)  # fmt: skip
_TRUE = frozenset({"1", "true", "yes", "on"})

# UV_* variables a build keeps from the caller: where uv caches, how it links and how many
# downloads it runs, whether it may use the network and which certificates it trusts. Every
# other UV_* (indexes, constraints, resolution, pre-releases, ...) is dropped: pip's
# configuration alone decides what is installed.
_UV_KEPT = frozenset(
    {
        "UV_CACHE_DIR", "UV_NO_CACHE", "UV_LINK_MODE", "UV_CONCURRENT_DOWNLOADS",
        "UV_CONCURRENT_BUILDS", "UV_CONCURRENT_INSTALLS", "UV_NO_PROGRESS", "UV_OFFLINE",
        "UV_SYSTEM_CERTS", "UV_NATIVE_TLS",
    }
)  # fmt: skip
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def effective_pip_config(listing: str) -> dict[str, str]:
    """The settings pip's `install` uses, from `pip config list`'s output (lines such as
    `global.find-links='/opt/wheels'` and `:env:.default-timeout='180'`)."""
    ranked: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, name = key.strip().rpartition(".")
        if not sep or not dot or section not in _PRECEDENCE:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        rank = _PRECEDENCE.index(section)
        name = name.lower().replace("_", "-")
        if name not in ranked or ranked[name][0] <= rank:
            ranked[name] = (rank, str(value))
    return {name: value for name, (_, value) in sorted(ranked.items())}


@dataclass(frozen=True)
class UvSettings:
    """pip's configuration in uv's terms: variables for uv's environment and arguments (none
    of them secret) for its command line; `untranslatable` names the pip settings uv cannot
    honour (then pip must build)."""

    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    untranslatable: list[str] = field(default_factory=list)


def uv_settings(pip: Mapping[str, str]) -> UvSettings:
    """Translate pip's effective settings (effective_pip_config) into uv's."""
    # pip picks the best version across every index; uv's default stops at the first index
    # that has the package, and asks extra indexes first.
    env = {"UV_INDEX_STRATEGY": "unsafe-best-match"}
    args: list[str] = []
    untranslatable: list[str] = []
    for name, value in pip.items():
        words = value.split()
        if name in _HARMLESS:
            continue
        if name == "index-url":
            env["UV_DEFAULT_INDEX"] = value.strip()
        elif name == "extra-index-url":
            env["UV_EXTRA_INDEX_URL"] = " ".join(words)
        elif name == "find-links":
            env["UV_FIND_LINKS"] = ",".join(words)
        elif name == "constraint":
            env["UV_CONSTRAINT"] = " ".join(words)
        elif name == "no-index" and value.lower() in _TRUE:
            args.append("--no-index")
        elif name == "cert":
            env["SSL_CERT_DIR" if os.path.isdir(value) else "SSL_CERT_FILE"] = value
        elif name == "client-cert":
            env["SSL_CLIENT_CERT"] = value
        elif name in ("timeout", "default-timeout"):
            env["UV_HTTP_TIMEOUT"] = value
        elif name == "retries":
            env["UV_HTTP_RETRIES"] = value
        elif name == "trusted-host":
            env["UV_INSECURE_HOST"] = " ".join(words)
        elif name == "pre":
            if value.lower() in _TRUE:
                env["UV_PRERELEASE"] = "allow"
        elif name == "proxy":
            env["HTTPS_PROXY"] = env["HTTP_PROXY"] = value
        elif name == "keyring-provider" and value in ("disabled", "subprocess"):
            env["UV_KEYRING_PROVIDER"] = value
        elif name in ("only-binary", "no-binary"):
            for packages in words:
                args += [f"--{name}", packages]
        else:
            untranslatable.append(name)
    return UvSettings(env, args, untranslatable)


def uv_environment(base: Mapping[str, str], settings: UvSettings) -> dict[str, str]:
    """The environment uv runs in: the caller's, less the UV_* variables that would choose
    other indexes or versions than pip's configuration does, plus the translated settings."""
    kept = {k: v for k, v in base.items() if not k.startswith("UV_") or k in _UV_KEPT}
    return {**kept, **settings.env}


def redact(text: str) -> str:
    """`text` with the user:password@ of every URL in it replaced (for logs and messages)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def describe(settings: UvSettings) -> str:
    """The translated settings as the build log shows them (credentials redacted)."""
    return " ".join(f"{k}={redact(v)}" for k, v in sorted(settings.env.items()))


def chosen(configured: Installer, env: Mapping[str, str]) -> Installer:
    """EVALHUB_INSTALLER when set to auto|uv|pip, else the configured one."""
    forced = env.get(INSTALLER_ENV, "").strip().lower()
    return next((i for i in INSTALLERS if i == forced), configured)


def find_uv() -> str | None:
    """The uv binary: the `uv` package's (evalhub depends on it), else one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")
