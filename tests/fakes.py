"""In-memory stand-ins for evalhub's ports, for fast in-process tests."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from evalhub.core import attestation
from evalhub.core.errors import PublishError
from evalhub.core.publication import Copied, Published
from evalhub.core.result import EvaluationResult, json_bytes
from evalhub.ports import Publisher, Signer

# --- publishing fakes (oci) ---


class FakePublisher:
    """evalhub.ports.Publisher in memory: results by digest (sha256 of the result record, so
    another result is another digest) and tags, each signed by the Signer it was handed.
    `down` makes every call fail as an unreachable registry does; `forget` loses results
    as a deleted layout does."""

    def __init__(self, target: str = "oci-layout:memory", down: bool = False) -> None:
        self.target = target
        self.down = down
        self.held: dict[str, EvaluationResult] = {}
        self.envelopes: dict[str, bytes] = {}  # result digest -> its signed statement
        self.tags: dict[str, str] = {}
        self.published: list[str] = []  # the evaluations published, in order
        self.asked: list[set[str]] = []  # the digests each `missing` call was asked about

    def publish(
        self, result: EvaluationResult, environment: Mapping[str, Any], signer: Signer
    ) -> Published:
        self._reachable()
        digest = _digest(json_bytes(result.record().model_dump(mode="json")))
        statement = attestation.statement(result.record(), digest)
        envelope = signer.sign(attestation.statement_bytes(statement), attestation.PAYLOAD_TYPE)
        self.held[digest], self.envelopes[digest] = result, envelope
        self.tags[result.tag] = digest
        self.published.append(result.evaluation)
        return Published(
            f"{self.target}:{result.tag}", digest, _digest(envelope), signer.key.key_id
        )

    def missing(self, digests: Collection[str]) -> set[str]:
        self._reachable()
        self.asked.append(set(digests))
        return set(digests) - set(self.held)

    def result_tags(self) -> list[str]:
        self._reachable()
        return sorted(self.tags)

    def copy_to(self, destination: Publisher, tag: str) -> Copied:
        self._reachable()
        if not isinstance(destination, FakePublisher):
            raise PublishError(f"cannot copy from {self.target} to {destination.target}")
        digest = self.tags[tag]
        destination.held[digest] = self.held[digest]
        destination.envelopes[digest] = self.envelopes[digest]
        destination.tags[tag] = digest
        return Copied(tag, digest, (_digest(self.envelopes[digest]),))

    def forget(self) -> None:
        self.held.clear()
        self.envelopes.clear()
        self.tags.clear()

    def _reachable(self) -> None:
        if self.down:
            raise PublishError(
                f"cannot reach {self.target}: no answer within 1 s",
                "check that the registry is running",
            )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
