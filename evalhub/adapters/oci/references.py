"""Where results live, written as text: targets and references.

    target      oci://HOST[:PORT]/REPOSITORY        an OCI registry
                oci-layout:DIR                      an OCI image layout directory
    reference   a target followed by :TAG, @sha256:HEX, or :TAG@sha256:HEX
                or a bare TAG / sha256:HEX, resolved against the project's registry target

A layout directory, like every path evalhub.yaml names, is relative to the project root.

Names follow the OCI distribution spec (repository path components, tags of at most 128
characters, sha256 digests); anything else is a ConfigError saying how to write it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from evalhub.core.errors import ConfigError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$"
)

EXAMPLES = "oci://127.0.0.1:5000/evalhub/results or oci-layout:.evalhub/oci"


@dataclass(frozen=True)
class Target:
    kind: Literal["registry", "layout"]
    location: str  # "host[:port]/repository", or the layout directory as written

    @property
    def host(self) -> str:
        return self.location.partition("/")[0]

    @property
    def repository(self) -> str:
        return self.location.partition("/")[2]

    def __str__(self) -> str:
        return (
            f"oci://{self.location}" if self.kind == "registry" else f"oci-layout:{self.location}"
        )


@dataclass(frozen=True)
class Reference:
    target: Target
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = str(self.target)
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_target(text: str) -> Target:
    if text.startswith("oci://"):
        location = text.removeprefix("oci://").rstrip("/")
        host, _, repository = location.partition("/")
        if not host or not HOST.match(host):
            raise ConfigError(f"{text!r}: {host or 'the host'} is not a registry host", _hint())
        if not repository or not REPOSITORY.match(repository):
            raise ConfigError(
                f"{text!r}: {repository or 'the repository'} is not a repository name",
                "repositories are lower-case path components like evalhub/results; "
                "add a tag with :TAG or a digest with @sha256:HEX after it",
            )
        return Target("registry", f"{host}/{repository}")
    if text.startswith("oci-layout:"):
        directory = text.removeprefix("oci-layout:")
        if not directory:
            raise ConfigError(f"{text!r} names no directory", _hint())
        return Target("layout", directory)
    raise ConfigError(f"{text!r} is not an OCI target", _hint())


def parse_reference(text: str, default: Target | None = None) -> Reference:
    """A reference as the user wrote it; a bare tag or digest is looked up in `default`."""
    if not text.startswith(("oci://", "oci-layout:")):
        if "/" in text:
            raise ConfigError(f"{text!r} is not an OCI target", _hint())
        if default is None:
            raise ConfigError(f"{text!r} names no registry", _hint())
        tag, digest = _split_bare(text)
        return Reference(default, tag, digest)
    rest, digest = _split_digest(text)
    if rest.startswith("oci://"):
        last = rest.rpartition("/")[2]
        tag = None
        if "/" in rest.removeprefix("oci://") and ":" in last:
            rest, _, tag = rest.rpartition(":")
    else:
        directory = rest.removeprefix("oci-layout:")
        head, sep, tail = directory.rpartition(":")
        tag = None
        if sep and "/" not in tail and head:
            rest, tag = f"oci-layout:{head}", tail
    reference = Reference(parse_target(rest), tag or None, digest)
    _check(reference, text)
    return reference


def _split_digest(text: str) -> tuple[str, str | None]:
    rest, sep, digest = text.rpartition("@")
    if not sep:
        return text, None
    return rest, digest


def _split_bare(text: str) -> tuple[str | None, str | None]:
    tag: str | None = None
    digest: str | None = text
    if not text.startswith("sha256:"):
        tag, _, digest_part = text.partition("@")
        digest = digest_part or None
    reference = Reference(Target("layout", "."), tag, digest)
    _check(reference, text)
    return tag, digest


def _check(reference: Reference, text: str) -> None:
    if reference.digest is not None and not DIGEST.match(reference.digest):
        raise ConfigError(
            f"{text!r}: {reference.digest!r} is not a sha256 digest",
            "write digests as sha256: followed by 64 lower-case hex characters",
        )
    if reference.tag is not None and not TAG.match(reference.tag):
        raise ConfigError(
            f"{text!r}: {reference.tag!r} is not a valid tag",
            "tags are letters, digits, '.', '_' and '-' (at most 128), e.g. quality-0123abcd",
        )
    if reference.tag is None and reference.digest is None:
        raise ConfigError(
            f"{text!r} names no result",
            "add :TAG (e.g. :quality-0123456789abcdef) or @sha256:HEX to the reference",
        )


def is_loopback(host: str) -> bool:
    """Whether `host[:port]` is this machine: localhost, 127.0.0.0/8 or ::1."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hint() -> str:
    return f"write targets like {EXAMPLES}"
