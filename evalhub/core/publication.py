"""What publishing and verifying produce, as plain values: the ports (evalhub.ports) speak
these, so the application never handles manifests, media types or keys itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalhub.core.result import ResultRecord

VERIFICATION_VERSION = 1


@dataclass(frozen=True)
class KeyRef:
    """A signing key as messages and ledgers name it: its trusted name and its id."""

    name: str
    key_id: str


@dataclass(frozen=True)
class Published:
    """Where a result went. `reference` is `<target>:<tag>`; the digest is its identity."""

    reference: str
    digest: str
    attestation_digest: str
    key_id: str

    @property
    def pinned(self) -> str:
        """`<target>:<tag>@sha256:…`, what a ledger cites."""
        return f"{self.reference}@{self.digest}"


@dataclass(frozen=True)
class Copied:
    tag: str
    digest: str
    referrers: tuple[str, ...]  # digests of the attached manifests copied along


@dataclass(frozen=True)
class Opened:
    """A signed envelope opened: its payload, and the trusted key that signed it (None: none
    did)."""

    payload: bytes
    payload_type: str
    key: KeyRef | None
    signed_by: tuple[str, ...]  # the key ids the signatures name


@dataclass(frozen=True)
class Check:
    name: str
    detail: str


@dataclass
class Verification:
    """The verdict of `evalhub verify` on one reference: the checks that held, in order, and
    the reason of the first that did not (None: verified)."""

    reference: str
    digest: str | None = None
    record: ResultRecord | None = None
    passed: list[Check] = field(default_factory=list)
    reason: str | None = None  # why it is not verified
    attestation: str | None = None
    key: KeyRef | None = None
    # The layers (config excluded) by title, each re-hashed against its descriptor: what a
    # report shows of the spec and environment comes from these bytes, never from elsewhere.
    layers: dict[str, bytes] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.reason is None and self.key is not None

    def as_dict(self) -> dict[str, Any]:
        record = self.record
        return {
            "format_version": VERIFICATION_VERSION,
            "reference": self.reference,
            "verified": self.verified,
            "reason": self.reason,
            "digest": self.digest,
            "evaluation": record.evaluation if record else None,
            "fingerprint": record.fingerprint if record else None,
            "verdict": record.verdict if record else None,
            "aggregate": record.aggregate if record else None,
            "scores": record.scores() if record else None,
            "attestation": self.attestation,
            "key": {"name": self.key.name, "id": self.key.key_id} if self.key else None,
            "checks": [{"name": c.name, "detail": c.detail} for c in self.passed],
        }


@dataclass
class ImageVerification:
    """The verdict of `evalhub verify --model-image` on a model image: every evalhub result
    attached to it, each verified; `reason` says why the image itself failed (not found,
    re-tagged, nothing attached)."""

    image: str
    digest: str
    reason: str | None = None
    results: list[Verification] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.reason is None and bool(self.results) and all(r.verified for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": VERIFICATION_VERSION,
            "image": self.image,
            "digest": self.digest,
            "verified": self.verified,
            "reason": self.reason,
            "results": [r.as_dict() for r in self.results],
        }
